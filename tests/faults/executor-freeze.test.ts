/**
 * Fault scenario: an executor frozen with SIGSTOP past its ack wait while another replica takes the job,
 * then resumed with SIGCONT. The frozen process goes on where it stopped and reports its result, which belongs to a
 * superseded attempt: the state-writer rejects it and logs why, and the node completes once (by the attempt that
 * took over). Two replicas of each executor; once for a paid AI job (HeyGen, frozen between two polls: the taker
 * resumes the recorded provider job, nothing is created twice) and once for a local ffmpeg merge (frozen while its
 * ffmpeg runs; the late attempt must not leave the committed output's bytes different from its content hash).
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeTestClip } from "@vp/media";
import { openSse, startFakeProviders, type FakeProviders, type ServiceName, type ServiceProcess, type SseEvent } from "@vp/testkit";
import { startFaultInfra, type FaultInfra, type FaultStack, HEYGEN_TALKING_HEAD, until } from "./harness";

const ACK_WAIT_MS = 3000;

let infra: FaultInfra;
let fx: FaultStack;
let fakes: FakeProviders;

beforeAll(async () => {
  fakes = await startFakeProviders({ pollsUntilDone: 1 });
  infra = await startFaultInfra("faults-freeze");
  fx = await infra.stack({
    jobAckWaitMs: ACK_WAIT_MS,
    env: {
      ...fakes.env,
      PROVIDER_POLL_INTERVAL_MS: "700",
      PROVIDER_HTTP_TIMEOUT_MS: "2000",
      // The reconciler stays out of it: JetStream's redelivery after the ack wait is what hands the job over.
      STALLED_AFTER_MS: "600000",
    },
  });
  await Promise.all([fx.replica("executor-ffmpeg"), fx.replica("executor-ai")]);
});

afterAll(async () => {
  // A test that failed half-way may leave a replica stopped; a stopped process cannot handle SIGTERM.
  for (const p of [...(fx?.processesOf("executor-ai") ?? []), ...(fx?.processesOf("executor-ffmpeg") ?? [])]) p.kill("SIGCONT");
  await infra?.destroy();
  await fakes?.close();
});

type NodeEvent = { nodeId: string; status: string; metadata: Record<string, unknown> | null; output: Record<string, unknown> | null };
const nodeEvents = (events: SseEvent[], nodeId: string) =>
  events.filter((e) => e.event === "node" && (e.data as NodeEvent).nodeId === nodeId).map((e) => e.data as NodeEvent);

/** The replica of `name` that logged "work started" for the job at `attempt`. */
function startedBy(name: ServiceName, jobId: string, attempt: number): ServiceProcess | undefined {
  return fx.processesOf(name).find((p) => p.logs.some((l) => l.msg === "work started" && l.jobId === jobId && l.attempt === attempt));
}

/**
 * Freezes the replica that runs attempt 1, waits until the other one took the job over (attempt 2) and completed the
 * node, resumes the frozen one and waits for the state-writer to reject its late result. Returns what was seen.
 */
async function freezeTakeOverResume(
  name: ServiceName,
  P: string,
  nodeId: string,
  jobId: string,
  victim: ServiceProcess,
  hooks: { afterTakeOver?: () => void } = {},
) {
  const frozenAt = Date.now();
  victim.kill("SIGSTOP");
  const taker = await until(`attempt 2 of ${nodeId} on the other replica`, () => startedBy(name, jobId, 2), 60_000);
  expect(taker.pid).not.toBe(victim.pid);
  // Handed over only once the ack wait ran out after the frozen replica's last working() heartbeat (sent every
  // third of the ack wait, so at most a third before the freeze).
  expect(Date.now() - frozenAt).toBeGreaterThanOrEqual((ACK_WAIT_MS * 2) / 3 - 100);
  hooks.afterTakeOver?.();
  const done = await fx.api.waitForStatus(P, nodeId, ["completed", "failed"], 90_000);
  expect(done.status, JSON.stringify(done.metadata)).toBe("completed");
  expect(done.metadata).toMatchObject({ jobId, attempt: 2, retries: 1 });

  victim.kill("SIGCONT");
  const writer = fx.stack.services.get("state-writer")!;
  const rejected = await writer.waitForLog((l) => l.msg === "late or stale result rejected" && l.jobId === jobId && l.kind === "completed", 90_000);
  expect(rejected).toMatchObject({ pipelineId: P, nodeId, attempt: 1, code: "stale" });
  expect(String(rejected.reason)).toBe(`Result of attempt 1 of job ${jobId} rejected: the node is completed at attempt 2`);
  // The resumed replica did finish its work and report it (that is the late result), then went on serving.
  await until("the resumed replica's own report", () => victim.logs.some((l) => l.msg === "work completed" && l.jobId === jobId && l.attempt === 1));
  expect(victim.proc.exitCode).toBeNull();
  return { taker, writer, done };
}

describe("an executor frozen past its ack wait, then resumed", () => {
  it("paid AI job: the other replica resumes the recorded HeyGen job, the late result of the frozen one is rejected and logged, one create", async () => {
    const { api } = fx;
    const { pipeline } = await api.ok("POST", "/pipelines", { title: "freeze ai" });
    const P = pipeline.id as string;
    await api.ok("POST", `/pipelines/${P}/nodes`, {
      id: "th",
      title: "presenter",
      type: "talking-head",
      config: { ...HEYGEN_TALKING_HEAD, script: "Frozen in the middle of a sentence." },
    });
    const sse = openSse(`${api.root}/pipelines/${P}/events`);
    await sse.opened;
    fakes.heygen.hold();
    const { job_id: jobId } = await api.ok("POST", `/pipelines/${P}/nodes/th/execute`);

    const victim = await until("attempt 1 started", () => startedBy("executor-ai", jobId, 1));
    // Freeze between two polls (just after one was answered), so the resumed process wakes up from its sleep and
    // polls again, rather than finding an HTTP call of its own timed out.
    const polls = () => fakes.heygen.calls.filter((c) => c.endpoint === "status").length;
    await fakes.heygen.waitFor(() => polls() >= 2, 60_000, "two polls");
    const seen = polls();
    await fakes.heygen.waitFor(() => polls() > seen, 10_000, "the next poll");
    await new Promise((r) => setTimeout(r, 100));

    const { taker } = await freezeTakeOverResume("executor-ai", P, "th", jobId, victim, { afterTakeOver: () => fakes.heygen.release() });
    expect(taker.logs.some((l) => l.msg === "resuming the provider job of an earlier attempt" && l.jobId === jobId)).toBe(true);
    expect(fakes.heygen.creates).toBe(1);
    expect(fakes.heygen.createTimes).toHaveLength(1);

    await new Promise((r) => setTimeout(r, 500));
    await sse.close();
    const completions = nodeEvents(sse.events, "th").filter((e) => e.status === "completed");
    expect(completions).toHaveLength(1);
    expect(completions[0]!.metadata).toMatchObject({ attempt: 2 });
    expect((await api.node(P, "th")).status).toBe("completed");
  });

  it("local ffmpeg merge: frozen mid-merge, the taker's result is committed once, the late one rejected, the stored output still matches its hash", async () => {
    const { api, stack } = fx;
    const { pipeline } = await api.ok("POST", "/pipelines", { title: "freeze ffmpeg" });
    const P = pipeline.id as string;
    for (const [id, seconds] of [
      ["a", 20],
      ["b", 20],
    ] as const) {
      const path = join(infra.dir, `${id}.mp4`);
      await makeTestClip({ path, durationSeconds: seconds, width: 320, height: 240, fps: 25, audio: true });
      await api.ok("POST", `/pipelines/${P}/nodes`, { id, title: id, type: "asset", asset: { type: "video" } });
      await api.ok("PUT", `/pipelines/${P}/nodes/${id}/asset`, new Uint8Array(await readFile(path)), { "content-type": "video/mp4" });
      await api.ok("POST", `/pipelines/${P}/nodes/${id}/execute`);
    }
    for (const id of ["a", "b"]) expect((await api.waitForStatus(P, id, ["completed", "failed"], 90_000)).status).toBe("completed");
    await api.ok("POST", `/pipelines/${P}/nodes`, {
      id: "m",
      title: "merge",
      type: "merge-videos",
      inputs: { segments: ["a", "b"] },
      config: { reencode: "always" },
    });
    const sse = openSse(`${api.root}/pipelines/${P}/events`);
    await sse.opened;
    const { job_id: jobId } = await api.ok("POST", `/pipelines/${P}/nodes/m/execute`);

    const victim = await until("attempt 1 started", () => startedBy("executor-ffmpeg", jobId, 1), 60_000);
    // Attempt 2 exists only because the frozen replica had not reported before the freeze: it was mid-merge.
    const { done } = await freezeTakeOverResume("executor-ffmpeg", P, "m", jobId, victim);

    await new Promise((r) => setTimeout(r, 500));
    await sse.close();
    const completions = nodeEvents(sse.events, "m").filter((e) => e.status === "completed");
    expect(completions).toHaveLength(1);
    const committed = stack.services.get("state-writer")!.logs.filter((l) => l.msg === "state committed" && l.jobId === jobId && l.status === "completed");
    expect(committed).toHaveLength(1);
    expect(committed[0]!.attempt).toBe(2);

    // The late attempt stored its file under the same key after the commit; what a user downloads must still be
    // the committed result (its bytes hash to the recorded contentHash).
    const node = await api.node(P, "m");
    expect(node.output).toEqual(done.output);
    const bytes = await readFile(join(stack.env.STORAGE_ROOT!, String(node.output!.s3Key)));
    expect(createHash("sha256").update(bytes).digest("hex")).toBe(node.output!.contentHash);
    expect(node.output!.duration as number).toBeCloseTo(40, 0);
  });
});
