/**
 * A local endpoint that speaks the part of the AWS Lambda API the executor uses: Invoke
 * (`POST /2015-03-31/functions/{FunctionName}/invocations`, RequestResponse), running the handlers
 * in-process. The real @aws-sdk/client-lambda talks to it unchanged (only its endpoint differs), so the
 * executor's lambda backend is tested through the same client, status codes and error shapes as on AWS:
 *
 * - a result: 200, the JSON payload, `X-Amz-Executed-Version: $LATEST`;
 * - a handler that throws: 200 with `X-Amz-Function-Error: Unhandled` and `{ errorType, errorMessage, trace }`;
 * - an unknown function: 404 `ResourceNotFoundException`; a payload that is not JSON: 400 `InvalidRequestContentException`;
 * - another invocation type (Event, DryRun): 400 `InvalidParameterValueException` (not needed here).
 *
 * Scripted faults (`fail(functionName, ...)`, taken in order by the next invocations), shaped as Lambda answers them
 * (the Lambda developer guide's "Troubleshoot invocation issues" and the Invoke API reference, read 2026-12-07):
 * - timeout: 200, `X-Amz-Function-Error: Unhandled`, `{ errorType: "Sandbox.Timedout", errorMessage: "RequestId: …
 *   Error: Task timed out after 900.00 seconds" }` (the handler is not run);
 * - oom: the same with `{ errorType: "Runtime.OutOfMemory", errorMessage: "RequestId: … Error: Runtime exited with
 *   error: signal: killed" }`;
 * - throttle: 429 `TooManyRequestsException` `{ Reason: "ReservedFunctionConcurrentInvocationLimitExceeded" }`;
 * - slow: the handler runs after `delayMs`.
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";

export type LambdaFunction = (event: unknown) => Promise<unknown>;

export type LambdaFault = { kind: "timeout" } | { kind: "oom" } | { kind: "throttle" } | { kind: "slow"; delayMs: number };

export interface Invocation {
  functionName: string;
  event: unknown;
  ok: boolean;
  durationMs: number;
}

export interface LocalLambda {
  /** http://127.0.0.1:<port>, for the LambdaClient's `endpoint`. */
  endpoint: string;
  /** Every invocation so far, in order. */
  invocations: Invocation[];
  /** Queues faults for the next invocations of `functionName`, in order. */
  fail(functionName: string, ...faults: LambdaFault[]): void;
  close(): Promise<void>;
}

/** The invoke payload limit of synchronous invocations. */
const MAX_PAYLOAD_BYTES = 6 * 1024 * 1024;
const INVOKE_PATH = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/;

function sendError(res: ServerResponse, status: number, type: string, message: string) {
  res.writeHead(status, { "content-type": "application/json", "x-amzn-errortype": type });
  res.end(JSON.stringify({ Type: "User", message }));
}

async function readBody(req: IncomingMessage): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_PAYLOAD_BYTES) return null;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

export async function startLocalLambda(functions: Record<string, LambdaFunction>): Promise<LocalLambda> {
  const invocations: Invocation[] = [];
  const faults = new Map<string, LambdaFault[]>();
  const unhandled = (res: ServerResponse, errorType: string, message: string) => {
    res.writeHead(200, { "content-type": "application/json", "x-amz-executed-version": "$LATEST", "x-amz-function-error": "Unhandled" });
    res.end(JSON.stringify({ errorType, errorMessage: `RequestId: ${randomUUID()} Error: ${message}` }));
  };
  const server: Server = createServer((req, res) => {
    void (async () => {
      const match = req.method === "POST" ? INVOKE_PATH.exec((req.url ?? "").split("?")[0]!) : null;
      if (!match) return sendError(res, 404, "UnknownOperationException", `no such operation: ${req.method} ${req.url}`);
      // A name, "name:qualifier", or an ARN (arn:aws:lambda:region:account:function:name[:qualifier]).
      const raw = decodeURIComponent(match[1]!);
      const name = raw.startsWith("arn:") ? (raw.split(":")[6] ?? "") : raw.split(":")[0]!;
      const fn = functions[name];
      if (!fn) return sendError(res, 404, "ResourceNotFoundException", `Function not found: ${name}`);
      const type = (req.headers["x-amz-invocation-type"] as string | undefined) ?? "RequestResponse";
      if (type !== "RequestResponse") return sendError(res, 400, "InvalidParameterValueException", `invocation type ${type} is not supported here`);
      const body = await readBody(req);
      if (body === null) return sendError(res, 413, "RequestTooLargeException", "Request must be smaller than 6291456 bytes for the InvokeFunction operation");
      let event: unknown;
      try {
        event = body.length ? JSON.parse(body.toString("utf8")) : {};
      } catch {
        return sendError(res, 400, "InvalidRequestContentException", "Could not parse request body into json");
      }
      const fault = faults.get(name)?.shift();
      if (fault?.kind === "throttle") {
        invocations.push({ functionName: name, event, ok: false, durationMs: 0 });
        res.writeHead(429, { "content-type": "application/json", "x-amzn-errortype": "TooManyRequestsException", "retry-after": "1" });
        return res.end(JSON.stringify({ Reason: "ReservedFunctionConcurrentInvocationLimitExceeded", Type: "User", message: "Rate Exceeded." }));
      }
      if (fault?.kind === "timeout" || fault?.kind === "oom") {
        invocations.push({ functionName: name, event, ok: false, durationMs: 0 });
        return fault.kind === "timeout"
          ? unhandled(res, "Sandbox.Timedout", "Task timed out after 900.00 seconds")
          : unhandled(res, "Runtime.OutOfMemory", "Runtime exited with error: signal: killed");
      }
      if (fault?.kind === "slow") await new Promise((r) => setTimeout(r, fault.delayMs));
      const started = performance.now();
      try {
        const result = await fn(event);
        invocations.push({ functionName: name, event, ok: true, durationMs: performance.now() - started });
        res.writeHead(200, { "content-type": "application/json", "x-amz-executed-version": "$LATEST" });
        res.end(JSON.stringify(result ?? null));
      } catch (error) {
        invocations.push({ functionName: name, event, ok: false, durationMs: performance.now() - started });
        const e = error instanceof Error ? error : new Error(String(error));
        res.writeHead(200, { "content-type": "application/json", "x-amz-executed-version": "$LATEST", "x-amz-function-error": "Unhandled" });
        res.end(
          JSON.stringify({
            errorType: e.name,
            errorMessage: e.message,
            trace: (e.stack ?? "")
              .split("\n")
              .slice(1, 6)
              .map((l) => l.trim()),
          }),
        );
      }
    })().catch((error: unknown) => {
      if (!res.headersSent) sendError(res, 500, "ServiceException", (error as Error).message);
      else res.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    endpoint: `http://127.0.0.1:${port}`,
    invocations,
    fail: (functionName, ...queued) => faults.set(functionName, [...(faults.get(functionName) ?? []), ...queued]),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
