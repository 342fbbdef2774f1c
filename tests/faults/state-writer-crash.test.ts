/**
 * Fault scenario: the state-writer dies after its commit and before its publish. The fault point
 * (`VP_FAULT_POINT=after-commit-before-publish`, services/state-writer/src/handlers/committed.ts; inert unless
 * set) SIGKILLs it once, on the first committed change whose event id contains VP_FAULT_POINT_MATCH. The
 * committed change must still reach SSE clients and the scheduler, exactly once: the unacknowledged fact (or the
 * unanswered claim) comes back after the restart, the guarded transition answers "already", and the state-writer
 * publishes the same event id again (JetStream would drop it if the first publish had landed).
 *
 * 1. An executor's completed fact (a run: script -> voiceover): the scheduler must learn of the script's
 *    completion to dispatch the voiceover, and SSE must show it once.
 * 2. The scheduler's claim (pending -> queued, core-NATS request): the claim's event and the job go out once.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openSse, type SseClient, type SseEvent } from "@vp/testkit";
import { startFaultInfra, type FaultInfra, type FaultStack } from "./harness";

let infra: FaultInfra;
let fx: FaultStack;
let admin: pg.Client;
const clients: SseClient[] = [];

beforeAll(async () => {
  infra = await startFaultInfra("faults-sw");
  fx = await infra.stack({ jobAckWaitMs: 5000, env: { VP_FAULT_POINT: "after-commit-before-publish", VP_FAULT_POINT_MATCH: ":completed" } });
  admin = new pg.Client({ connectionString: fx.adminUrl });
  await admin.connect();
});

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => undefined);
  await admin?.end().catch(() => undefined);
  await infra?.destroy();
});

type NodeEvent = { eventId: string; nodeId: string; status: string; stateVersion: number };
const nodeEvents = (events: SseEvent[]) => events.filter((e) => e.event === "node").map((e) => ({ id: Number(e.id), ...(e.data as NodeEvent) }));

async function nodeRow(P: string, id: string) {
  const { rows } = await admin.query("select status, metadata from video_production_nodes where pipeline_id = $1 and id = $2", [P, id]);
  return rows[0] as { status: string; metadata: Record<string, unknown> };
}

/** Every event of pipeline P the stream holds, read through a fresh SSE client from the start of the stream. */
async function storedEvents(P: string, until: (events: ReturnType<typeof nodeEvents>) => boolean) {
  const all = openSse(`${fx.api.root}/pipelines/${P}/events`, { lastEventId: "0" });
  clients.push(all);
  await all.waitFor((events) => until(nodeEvents(events)), 60_000);
  // Anything published after the condition holds would arrive within moments; give it that chance.
  await new Promise((r) => setTimeout(r, 1500));
  return nodeEvents(all.events);
}

function strictlyIncreasing(ids: number[]) {
  return ids.every((id, i) => i === 0 || id > ids[i - 1]!);
}

async function crashedStateWriter() {
  const sw = fx.stack.services.get("state-writer")!;
  const exit = await Promise.race([sw.exited, new Promise<null>((r) => setTimeout(() => r(null), 90_000))]);
  expect(exit, "the state-writer hit its fault point").not.toBeNull();
  expect(exit!.signal).toBe("SIGKILL");
  // The process's last stdout lines may be read after its exit event.
  const deadline = Date.now() + 5000;
  while (!sw.logs.some((l) => l.msg === "fault point: killing the state-writer after commit, before publish") && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
  }
  expect(sw.logs.some((l) => l.msg === "fault point: killing the state-writer after commit, before publish")).toBe(true);
}

describe("the state-writer crashes after its commit and before its publish", () => {
  it("a committed completion still reaches SSE and the scheduler, once", async () => {
    const { api, stack } = fx;
    const { pipeline } = await api.ok("POST", "/pipelines", { title: "state-writer crash: completed" });
    const P = pipeline.id as string;
    await api.ok("POST", `/pipelines/${P}/nodes`, {
      id: "script",
      title: "Script",
      type: "asset",
      asset: { type: "text", content: "Committed once, told once." },
    });
    await api.ok("POST", `/pipelines/${P}/nodes`, {
      id: "vo",
      title: "Voice",
      type: "generate-voiceover",
      inputs: { script: ["script"] },
      config: { provider: "local", voiceId: "en-us" },
    });
    const live = openSse(`${api.root}/pipelines/${P}/events`);
    clients.push(live);
    await live.waitFor((events) => events.some((e) => e.event === "snapshot"));

    const run = await api.ok("POST", `/pipelines/${P}/execute`, {});
    await crashedStateWriter();

    // Committed before the crash, never published.
    const script = await nodeRow(P, "script");
    expect(script.status).toBe("completed");
    const eventId = `${script.metadata.jobId as string}:completed`;
    await new Promise((r) => setTimeout(r, 1000));
    expect(nodeEvents(live.events).filter((e) => e.eventId === eventId)).toEqual([]);
    expect((await nodeRow(P, "vo")).status).toBe("pending");

    delete stack.env.VP_FAULT_POINT;
    const sw = await stack.start("state-writer");

    // The redelivered fact is "already" applied and its event published now: the live client and the scheduler see it.
    await live.waitFor((events) => nodeEvents(events).some((e) => e.nodeId === "vo" && e.status === "completed"), 120_000);
    await api.waitForStatus(P, "vo", ["completed"], 60_000);
    const events = nodeEvents(live.events);
    expect(events.filter((e) => e.eventId === eventId)).toHaveLength(1);
    expect(strictlyIncreasing(events.map((e) => e.id))).toBe(true);
    expect(sw.logs.some((l) => l.msg === "state committed" && l.nodeId === "script" && l.outcome === "already")).toBe(true);

    // The stream holds that event once (JetStream dedupe on the deterministic id), and the run finished.
    const stored = await storedEvents(P, (evs) => evs.some((e) => e.nodeId === "vo" && e.status === "completed"));
    expect(stored.filter((e) => e.eventId === eventId)).toHaveLength(1);
    expect(stored.map((e) => e.eventId)).toEqual(events.map((e) => e.eventId));
    const { runs } = await api.ok("GET", `/pipelines/${P}/runs`);
    expect(runs[0]).toMatchObject({ id: run.run_id, status: "completed" });

    // The scheduler dispatched the voiceover once; each work ran once.
    const dispatched = stack.services.get("scheduler")!.logs.filter((l) => l.msg === "run member dispatched" && l.nodeId === "vo");
    expect(dispatched).toHaveLength(1);
    expect(stack.services.get("executor-ffmpeg")!.logs.filter((l) => l.msg === "work started" && l.pipelineId === P)).toHaveLength(1);
    expect(stack.services.get("executor-ai")!.logs.filter((l) => l.msg === "work started" && l.pipelineId === P)).toHaveLength(1);
  });

  it("a committed claim (pending -> queued) still reaches SSE and dispatches its job, once", async () => {
    const { api, stack } = fx;
    stack.env.VP_FAULT_POINT = "after-commit-before-publish";
    stack.env.VP_FAULT_POINT_MATCH = ":queued";
    await stack.services.get("state-writer")!.stop();
    await stack.start("state-writer");

    const { pipeline } = await api.ok("POST", "/pipelines", { title: "state-writer crash: claim" });
    const P = pipeline.id as string;
    await api.ok("POST", `/pipelines/${P}/nodes`, { id: "note", title: "Note", type: "asset", asset: { type: "text", content: "claimed once" } });
    const live = openSse(`${api.root}/pipelines/${P}/events`);
    clients.push(live);
    await live.waitFor((events) => events.some((e) => e.event === "snapshot"));

    // The scheduler's claim commits, the state-writer dies before answering: the verdict is late (202, stored).
    const executing = api.call("POST", `/pipelines/${P}/nodes/note/execute`);
    await crashedStateWriter();
    const note = await nodeRow(P, "note");
    expect(note.status).toBe("queued");
    const jobId = note.metadata.jobId as string;

    delete stack.env.VP_FAULT_POINT;
    await stack.start("state-writer");
    const answer = await executing;
    expect([200, 202], JSON.stringify(answer.body)).toContain(answer.status);
    expect(answer.body.job_id).toBe(jobId);

    await live.waitFor((events) => nodeEvents(events).some((e) => e.nodeId === "note" && e.status === "completed"), 120_000);
    const events = nodeEvents(live.events);
    expect(events.filter((e) => e.eventId === `${jobId}:queued`)).toHaveLength(1);
    expect(events.filter((e) => e.status === "completed")).toHaveLength(1);
    expect(strictlyIncreasing(events.map((e) => e.id))).toBe(true);
    const stored = await storedEvents(P, (evs) => evs.some((e) => e.status === "completed"));
    expect(stored.filter((e) => e.eventId === `${jobId}:queued`)).toHaveLength(1);
    expect(stored.map((e) => e.eventId)).toEqual(events.map((e) => e.eventId));
    // One job: one work start for it across the executor's life.
    expect(stack.services.get("executor-ffmpeg")!.logs.filter((l) => l.msg === "work started" && l.pipelineId === P)).toHaveLength(1);
    expect((await nodeRow(P, "note")).status).toBe("completed");
  });
});
