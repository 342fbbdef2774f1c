/**
 * The Lambda invoker's error handling, through the real @aws-sdk/client-lambda against the local
 * endpoint that speaks the Invoke API (lambdas/local-invoke).
 */
import { InvokeCommand, LambdaClient } from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLocalLambda, type LocalLambda } from "../../../../lambdas/local-invoke/server";
import { WorkInputError } from "./errors";
import { LambdaInputError } from "../../../../lambdas/shared/runtime";
import { createLambdaInvoker, LambdaFunctionError } from "./lambda";

let local: LocalLambda;
let client: LambdaClient;

const RESULT = { s3_key: "out/merged.mp4", duration: 120.5, size: 10_485_760, cost: 0.05 };
const EVENT = { input_keys: ["a/1.mp4", "a/2.mp4"], output_key: "out/merged.mp4" };

beforeAll(async () => {
  local = await startLocalLambda({
    "video-merger": async (event) => ({ ...RESULT, echoed: event }),
    "audio-mixer": async () => {
      throw new LambdaInputError("the audio input has no audio stream");
    },
    crashing: async () => {
      throw new Error("S3 GetObject: socket hang up");
    },
    "video-composer": async () => ({ errorMessage: "ffmpeg exploded" }),
    "error-payload": async () => ({ error: "disk full" }),
    "not-media": async () => ({ hello: "world" }),
  });
  client = new LambdaClient({ endpoint: local.endpoint, region: "us-east-1", credentials: { accessKeyId: "test", secretAccessKey: "test" }, maxAttempts: 1 });
});
afterAll(async () => {
  client?.destroy();
  await local?.close();
});

describe("the local Invoke endpoint", () => {
  it("answers like Lambda: payload and status, function errors in a header", async () => {
    const ok = await client.send(new InvokeCommand({ FunctionName: "video-merger", Payload: Buffer.from(JSON.stringify(EVENT)) }));
    expect(ok.StatusCode).toBe(200);
    expect(ok.FunctionError).toBeUndefined();
    expect(JSON.parse(Buffer.from(ok.Payload!).toString())).toMatchObject({ ...RESULT, echoed: EVENT });
    const failed = await client.send(
      new InvokeCommand({ FunctionName: "arn:aws:lambda:us-east-1:123456789012:function:audio-mixer", Payload: Buffer.from("{}") }),
    );
    expect(failed.StatusCode).toBe(200);
    expect(failed.FunctionError).toBe("Unhandled");
    expect(JSON.parse(Buffer.from(failed.Payload!).toString())).toMatchObject({
      errorType: "LambdaInputError",
      errorMessage: "the audio input has no audio stream",
    });
    await expect(client.send(new InvokeCommand({ FunctionName: "nope" }))).rejects.toMatchObject({ name: "ResourceNotFoundException" });
  });
});

describe("createLambdaInvoker", () => {
  const invoker = () => createLambdaInvoker({ client, functionNames: { "audio-mixer": "audio-mixer" } });

  it("returns the function's media result", async () => {
    const result = await invoker().invoke("video-merger", EVENT);
    expect(result).toMatchObject(RESULT);
    expect(local.invocations.at(-1)).toMatchObject({ functionName: "video-merger", event: EVENT, ok: true });
  });

  it("turns function errors, errorMessage and error payloads into failed nodes with the reason", async () => {
    await expect(invoker().invoke("audio-mixer", { video_key: "a", audio_key: "b", output_key: "c" })).rejects.toThrow(
      new WorkInputError("Lambda error: the audio input has no audio stream"),
    );
    await expect(invoker().invoke("video-composer", { background_key: "a", overlay_keys: ["b"], output_key: "c" })).rejects.toThrow(
      new WorkInputError("Lambda error: ffmpeg exploded"),
    );
    const answered = createLambdaInvoker({ client, functionNames: { "video-merger": "error-payload" } });
    await expect(answered.invoke("video-merger", EVENT)).rejects.toThrow(new WorkInputError("Lambda error: disk full"));
    const odd = createLambdaInvoker({ client, functionNames: { "video-merger": "not-media" } });
    await expect(odd.invoke("video-merger", EVENT)).rejects.toThrow(/^Lambda not-media returned a payload that is not a media result/);
  });

  it("a timeout, a memory kill, an error inside the function and throttling are retried (not failed nodes), each with its reason", async () => {
    local.fail("video-merger", { kind: "timeout" }, { kind: "oom" }, { kind: "throttle" });
    const timedOut = await invoker()
      .invoke("video-merger", EVENT)
      .catch((e: unknown) => e);
    expect(timedOut).toBeInstanceOf(LambdaFunctionError);
    expect(timedOut).not.toBeInstanceOf(WorkInputError);
    expect((timedOut as Error).message).toMatch(
      /^Lambda video-merger failed \(Sandbox\.Timedout\): RequestId: [\w-]+ Error: Task timed out after 900\.00 seconds$/,
    );
    const killed = await invoker()
      .invoke("video-merger", EVENT)
      .catch((e: unknown) => e);
    expect((killed as LambdaFunctionError).errorType).toBe("Runtime.OutOfMemory");
    const throttled = await invoker()
      .invoke("video-merger", EVENT)
      .catch((e: unknown) => e);
    expect(throttled).toMatchObject({ name: "TooManyRequestsException" });
    expect(throttled).not.toBeInstanceOf(WorkInputError);
    const crashed = await createLambdaInvoker({ client, functionNames: { "video-merger": "crashing" } })
      .invoke("video-merger", EVENT)
      .catch((e: unknown) => e);
    expect(crashed).toBeInstanceOf(LambdaFunctionError);
    expect((crashed as Error).message).toBe("Lambda crashing failed (Error): S3 GetObject: socket hang up");
    // After the faults, the function answers again.
    await expect(invoker().invoke("video-merger", EVENT)).resolves.toMatchObject(RESULT);
  });

  it("a function that is not deployed fails the node; a network failure is left to the retry policy", async () => {
    const missing = createLambdaInvoker({ client, functionNames: { "video-merger": "video-merger-prod" } });
    const error = await missing.invoke("video-merger", EVENT).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WorkInputError);
    expect((error as Error).message).toMatch(/^Lambda invocation failed: ResourceNotFoundException: Function not found: video-merger-prod/);

    const unreachable = new LambdaClient({
      endpoint: "http://127.0.0.1:9",
      region: "us-east-1",
      credentials: { accessKeyId: "t", secretAccessKey: "t" },
      maxAttempts: 1,
    });
    const down = await createLambdaInvoker({ client: unreachable })
      .invoke("video-merger", EVENT)
      .catch((e: unknown) => e);
    expect(down).toBeInstanceOf(Error);
    expect(down).not.toBeInstanceOf(WorkInputError);
    unreachable.destroy();
  });
});
