/**
 * Fault scenario: a poison message (valid subject, payload that fails the schema) and a job that fails
 * on every delivery. Each ends as a failed node with a readable reason, seen over SSE, or — when the message names
 * no node — as a logged rejection with the reason; never as silence, never redelivered forever.
 *
 * The poison messages are published by the test itself on the fault nats-server: to a node type's job subject and
 * to a node's state subject. The one failing on every delivery is a HeyGen talking head whose (fake) HeyGen
 * answers every create with a 500.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { busInboxPrefix, connectBus, request } from "@vp/bus";
import { createLogger } from "@vp/telemetry";
import { openSse, startFakeProviders, type FakeProviders, type SseEvent } from "@vp/testkit";
import { startFaultInfra, type FaultInfra, type FaultStack, HEYGEN_TALKING_HEAD } from "./harness";

let infra: FaultInfra;
let fx: FaultStack;
let fakes: FakeProviders;

const JOB_MAX_ATTEMPTS = 3;

beforeAll(async () => {
  fakes = await startFakeProviders({ pollsUntilDone: 1 });
  infra = await startFaultInfra("faults-poison");
  fx = await infra.stack({
    jobAckWaitMs: 3000,
    env: {
      ...fakes.env,
      JOB_MAX_ATTEMPTS: String(JOB_MAX_ATTEMPTS),
      PROVIDER_HTTP_RETRIES: "0",
      PROVIDER_HTTP_TIMEOUT_MS: "1500",
      PROVIDER_POLL_INTERVAL_MS: "100",
    },
  });
});

afterAll(async () => {
  await infra?.destroy();
  await fakes?.close();
});

type NodeEvent = { nodeId: string; status: string; metadata: Record<string, unknown> | null };
const nodeEvents = (events: SseEvent[], nodeId: string) =>
  events.filter((e) => e.event === "node" && (e.data as NodeEvent).nodeId === nodeId).map((e) => e.data as NodeEvent);
const reachedStatus = (nodeId: string, status: string) => (events: SseEvent[]) => nodeEvents(events, nodeId).some((e) => e.status === status);

async function publishRaw(subject: string, raw: string): Promise<number> {
  const ack = await fx.bus.js.publish(subject, new TextEncoder().encode(raw), { msgID: randomUUID() });
  return ack.seq;
}

/** The consumer has nothing pending and nothing awaiting an ack: nothing is being redelivered. */
async function settledConsumer(durable: string, stream: string) {
  const info = await fx.bus.jsm.consumers.info(stream, durable);
  return { pending: info.num_pending, ackPending: info.num_ack_pending, redelivered: info.num_redelivered };
}

async function waitFor<T>(what: string, check: () => T | undefined | false, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`${what} not seen within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("poison messages and a job that fails on every delivery", () => {
  it("a poison job message naming a claimed node fails that node with the reason over SSE; one naming nothing is a logged rejection; none is redelivered", async () => {
    const { api, bus, topology, stack } = fx;
    const { pipeline } = await api.ok("POST", "/pipelines", { title: "poison job" });
    const P = pipeline.id as string;
    await api.ok("POST", `/pipelines/${P}/nodes`, { id: "m", title: "merge", type: "merge-videos", config: {} });
    const sse = openSse(`${api.root}/pipelines/${P}/events`);
    await sse.opened;

    // The scheduler's part, done by the test as the scheduler's NATS user (the state-writer answers only its
    // requesters' inboxes): claim the node for a job (pending -> queued) ...
    const jobId = `job-${randomUUID()}`;
    const asScheduler = await connectBus({
      servers: infra.nats.url,
      name: "poison-as-scheduler",
      logger: createLogger({ service: "faults", level: "warn" }),
      ...fx.credentials.scheduler,
      inboxPrefix: busInboxPrefix("scheduler", topology),
    });
    const claim = await request(
      asScheduler,
      topology.messages.transition,
      { v: 1, kind: "claim-queued", pipelineId: P, nodeId: "m", jobId },
      { timeoutMs: 30_000 },
    ).finally(() => asScheduler.close());
    expect(claim.ok, JSON.stringify(claim)).toBe(true);
    await sse.waitFor(reachedStatus("m", "queued"));

    // ... and publish its job message in a form the executor cannot read (a version it does not know), plus two
    // messages naming no node at all.
    const subject = topology.subjects.job("merge-videos");
    const poisonSeq = await publishRaw(
      subject,
      JSON.stringify({ v: 2, jobId, pipelineId: P, nodeId: "m", type: "merge-videos", dispatchedAt: new Date().toISOString() }),
    );
    const garbageSeq = await publishRaw(subject, "\u0000 this is not JSON {");
    const namelessSeq = await publishRaw(subject, JSON.stringify({ v: 1, type: "merge-videos" }));

    const events = await sse.waitFor(reachedStatus("m", "failed"), 90_000);
    const failed = nodeEvents(events, "m").find((e) => e.status === "failed")!;
    expect(failed.metadata!.error).toMatch(/^The job message for this node could not be read \(v: .+\); nothing was run\. Run the node again$/);
    expect(failed.metadata!.jobId).toBe(jobId);
    expect((await api.node(P, "m")).status).toBe("failed");

    const executor = stack.services.get("executor-ffmpeg")!;
    await waitFor("the nameless rejections", () => executor.logs.filter((l) => l.msg === "invalid job message names no node; rejected").length >= 2);
    for (const seq of [poisonSeq, garbageSeq, namelessSeq]) {
      const lines = executor.logs.filter((l) => l.msg === "invalid message; terminating it" && l.seq === seq);
      expect(lines, `seq ${seq}`).toHaveLength(1);
      expect(String(lines[0]!.reason).length, `seq ${seq}: a readable reason`).toBeGreaterThan(5);
    }
    const garbage = executor.logs.find((l) => l.msg === "invalid job message names no node; rejected" && l.seq === garbageSeq)!;
    expect(String(garbage.reason)).toMatch(/^not JSON: /);
    const nameless = executor.logs.find((l) => l.msg === "invalid job message names no node; rejected" && l.seq === namelessSeq)!;
    expect(String(nameless.reason)).toMatch(/jobId|pipelineId|nodeId|dispatchedAt/);
    // (Log lines are written after the publish they follow, so they may arrive after the SSE event.)
    await executor.waitForLog((l) => l.msg === "invalid job message rejected; its node fails" && l.jobId === jobId);
    const writerLogs = stack.services.get("state-writer")!;
    await writerLogs.waitForLog((l) => l.msg === "state committed" && l.nodeId === "m" && l.pipelineId === P);
    const committed = writerLogs.logs.filter((l) => l.msg === "state committed" && l.nodeId === "m" && l.pipelineId === P);
    expect(committed.map((l) => l.status)).toEqual(["failed"]);

    // Terminated, not redelivered: after more than an ack wait nothing is pending and each was logged once.
    await new Promise((r) => setTimeout(r, 4000));
    const consumer = topology.consumers.job("merge-videos");
    expect(await settledConsumer(consumer.durable, consumer.stream)).toEqual({ pending: 0, ackPending: 0, redelivered: 0 });
    expect(executor.logs.filter((l) => l.msg === "invalid message; terminating it")).toHaveLength(3);
    await sse.close();
  });

  it("a poison state message: an unreadable result of the running attempt fails the node over SSE; an unreadable tick or one naming no job is a logged rejection", async () => {
    const { api, topology, stack } = fx;
    fakes.reset();
    const { pipeline } = await api.ok("POST", "/pipelines", { title: "poison state" });
    const P = pipeline.id as string;
    await api.ok("POST", `/pipelines/${P}/nodes`, {
      id: "th",
      title: "presenter",
      type: "talking-head",
      config: { ...HEYGEN_TALKING_HEAD, script: "A poison fact arrives while I am rendering." },
    });
    const sse = openSse(`${api.root}/pipelines/${P}/events`);
    await sse.opened;
    fakes.heygen.hold(); // the provider job keeps running: the node stays in_progress
    const accepted = await api.ok("POST", `/pipelines/${P}/nodes/th/execute`);
    await fakes.heygen.waitFor(() => fakes.heygen.calls.filter((c) => c.endpoint === "status").length >= 1, 60_000, "polling");
    const running = await api.node(P, "th");
    expect(running.status).toBe("in_progress");
    const jobId = running.metadata!.jobId as string;
    const attempt = running.metadata!.attempt as number;
    expect(jobId).toBe(accepted.job_id);

    const subject = topology.subjects.state(P, "th");
    const at = new Date().toISOString();
    const tickSeq = await publishRaw(subject, JSON.stringify({ v: 1, kind: "progress", pipelineId: P, nodeId: "th", jobId, attempt, at, percent: 250 }));
    const garbageSeq = await publishRaw(subject, "{ completed: yes");
    const resultSeq = await publishRaw(
      subject,
      JSON.stringify({ v: 1, kind: "completed", pipelineId: P, nodeId: "th", jobId, attempt, at, output: { s3Key: 42 }, cost: -1 }),
    );

    const events = await sse.waitFor(reachedStatus("th", "failed"), 90_000);
    const failed = nodeEvents(events, "th").find((e) => e.status === "failed")!;
    expect(failed.metadata!.error).toMatch(
      new RegExp(`^The executor's completed report for attempt ${attempt} could not be read \\(.*(output|cost).*\\); run the node again$`),
    );

    const writer = stack.services.get("state-writer")!;
    // (Log lines are written after the publish they follow, so they may arrive after the SSE event.)
    await writer.waitForLog((l) => l.msg === "invalid state event: the node fails" && l.nodeId === "th" && l.pipelineId === P);
    for (const seq of [tickSeq, garbageSeq, resultSeq]) {
      const lines = writer.logs.filter((l) => l.msg === "invalid message; terminating it" && l.seq === seq);
      expect(lines, `seq ${seq}`).toHaveLength(1);
    }
    await waitFor("both logged rejections", () => writer.logs.filter((l) => l.msg === "invalid state event rejected" && l.pipelineId === P).length >= 2);
    const rejected = writer.logs.filter((l) => l.msg === "invalid state event rejected" && l.pipelineId === P);
    expect(rejected.map((l) => l.seq).sort()).toEqual([tickSeq, garbageSeq].sort());
    expect(String(rejected.find((l) => l.seq === tickSeq)!.reason)).toMatch(/percent/);
    expect(String(rejected.find((l) => l.seq === garbageSeq)!.reason)).toMatch(/^not JSON: /);
    expect(writer.logs.filter((l) => l.msg === "invalid state event: the node fails" && l.nodeId === "th" && l.pipelineId === P)).toHaveLength(1);

    // The executor's own result, when it comes, no longer applies: rejected and logged, the node stays failed.
    fakes.heygen.release();
    const late = await writer.waitForLog((l) => l.msg === "late or stale result rejected" && l.jobId === jobId && l.kind === "completed", 90_000);
    expect(String(late.reason)).toMatch(/rejected/);
    expect((await api.node(P, "th")).status).toBe("failed");
    expect(fakes.heygen.creates).toBe(1);
    const consumer = topology.consumers.stateWriter;
    await new Promise((r) => setTimeout(r, 1000));
    expect((await settledConsumer(consumer.durable, consumer.stream)).ackPending).toBe(0);
    expect(writer.logs.filter((l) => l.msg === "invalid message; terminating it")).toHaveLength(3);
    await sse.close();
  });

  it(`a job that fails on every delivery ends after ${JOB_MAX_ATTEMPTS} deliveries as a failed node with the last error, over SSE; nothing is paid`, async () => {
    const { api, stack } = fx;
    fakes.reset();
    fakes.heygen.fail("create", ...Array.from({ length: 20 }, () => ({ kind: "500" as const })));
    const { pipeline } = await api.ok("POST", "/pipelines", { title: "always failing" });
    const P = pipeline.id as string;
    await api.ok("POST", `/pipelines/${P}/nodes`, {
      id: "th",
      title: "presenter",
      type: "talking-head",
      config: { ...HEYGEN_TALKING_HEAD, script: "HeyGen is down today." },
    });
    const sse = openSse(`${api.root}/pipelines/${P}/events`);
    await sse.opened;
    const accepted = await api.ok("POST", `/pipelines/${P}/nodes/th/execute`);

    const events = await sse.waitFor(reachedStatus("th", "failed"), 120_000);
    const failed = nodeEvents(events, "th").find((e) => e.status === "failed")!;
    expect(failed.metadata).toMatchObject({ jobId: accepted.job_id, attempt: JOB_MAX_ATTEMPTS, retries: JOB_MAX_ATTEMPTS - 1 });
    expect(String(failed.metadata!.error)).toMatch(/^HeyGen unavailable: .*500/);
    // Every delivery tried once and was refused; nothing was created, so nothing was paid.
    expect(fakes.heygen.calls.filter((c) => c.endpoint === "create").map((c) => c.status)).toEqual(Array(JOB_MAX_ATTEMPTS).fill(500));
    expect(fakes.heygen.creates).toBe(0);
    const executor = stack.services.get("executor-ai")!;
    expect(executor.logs.filter((l) => l.msg === "work started" && l.jobId === accepted.job_id)).toHaveLength(JOB_MAX_ATTEMPTS);
    expect(executor.logs.filter((l) => l.msg === "giving up on message" && l.jobId === accepted.job_id)).toHaveLength(1);
    // And it stays failed: no further delivery after the give-up.
    await new Promise((r) => setTimeout(r, 4000));
    expect(fakes.heygen.calls.filter((c) => c.endpoint === "create")).toHaveLength(JOB_MAX_ATTEMPTS);
    expect((await api.node(P, "th")).status).toBe("failed");
    await sse.close();
  });
});
