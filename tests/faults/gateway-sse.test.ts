/**
 * Fault scenario: the gateway is killed (SIGKILL) while 50 SSE clients stream a running pipeline.
 * Each client reconnects with Last-Event-ID (header or ?lastEventId=) once a gateway is back and converges to the database's state with
 * no gap and no duplicate: its event ids are strictly increasing across both connections, the union of what it
 * got before and after equals what VP_EVENTS holds for the pipeline after its snapshot, and the node states it
 * ends with (snapshot + events, by stateVersion) equal the database's.
 *
 * The events come from a run of 240 text assets executed one at a time (JOB_CONCURRENCY=1), so the run keeps
 * committing while the gateway is down and restarting (the run does not need the gateway).
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { replayEvents } from "@vp/bus";
import { mintStreamToken, openSse, type SseClient, type SseEvent } from "@vp/testkit";
import { startFaultInfra, type FaultInfra, type FaultStack } from "./harness";

const CLIENTS = 50;
const NODES = 240;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let infra: FaultInfra;
let fx: FaultStack;
let admin: pg.Client;
const open: SseClient[] = [];

beforeAll(async () => {
  infra = await startFaultInfra("faults-sse");
  fx = await infra.stack({ jobAckWaitMs: 5000, env: { JOB_CONCURRENCY: "1" } });
  admin = new pg.Client({ connectionString: fx.adminUrl });
  await admin.connect();
});

afterAll(async () => {
  for (const c of open) await c.close().catch(() => undefined);
  await admin?.end().catch(() => undefined);
  await infra?.destroy();
});

type NodeEvent = { eventId: string; nodeId: string; status: string; stateVersion: number };
type Snapshot = { pipeline: { nodes: Array<{ id: string; status: string }> }; stateVersions: Record<string, number> };

function nodeEventsOf(events: SseEvent[]) {
  return events.filter((e) => e.event === "node").map((e) => ({ seq: Number(e.id), ...(e.data as NodeEvent) }));
}

async function completedCount(P: string): Promise<number> {
  const { rows } = await admin.query("select count(*)::int as n from video_production_nodes where pipeline_id = $1 and status = 'completed'", [P]);
  return rows[0].n as number;
}

describe("the gateway is killed while 50 SSE clients stream", () => {
  it("every client resumes with Last-Event-ID: no gap, no duplicate, and ends at the database's state", async () => {
    const { api, stack, topology, bus } = fx;
    const { pipeline } = await api.ok("POST", "/pipelines", { title: "gateway killed under SSE" });
    const P = pipeline.id as string;
    for (let i = 0; i < NODES; i += 20) {
      await Promise.all(
        Array.from({ length: Math.min(20, NODES - i) }, (_, k) => `n${i + k}`).map((id) =>
          api.ok("POST", `/pipelines/${P}/nodes`, { id, title: id, type: "asset", asset: { type: "text", content: `note ${id}` } }),
        ),
      );
    }
    const url = `${api.root}/pipelines/${P}/events`;

    const before: SseClient[] = [];
    for (let i = 0; i < CLIENTS; i += 10) {
      const batch = Array.from({ length: 10 }, () => openSse(url));
      before.push(...batch);
      open.push(...batch);
      await Promise.all(batch.map((c) => c.waitFor((events) => events.some((e) => e.event === "snapshot"), 60_000)));
    }

    const run = await api.ok("POST", `/pipelines/${P}/execute`, { force: true });
    // Kill the gateway once the run is well under way, while events are streaming.
    const deadline = Date.now() + 120_000;
    while ((await completedCount(P)) < NODES / 4) {
      if (Date.now() > deadline) throw new Error("the run did not get going");
      await sleep(100);
    }
    const gateway = stack.services.get("gateway")!;
    gateway.kill("SIGKILL");
    expect((await gateway.exited).signal).toBe("SIGKILL");
    const completedAtKill = await completedCount(P);
    // Every stream broke with the process; what each client holds now is its "before".
    await Promise.all(before.map((c) => c.close()));
    const lastIds = before.map((c) => c.lastEventId);
    for (const id of lastIds) expect(id).toBeDefined();

    await stack.start("gateway");
    const completedAtRestart = await completedCount(P);
    // Half resume with the Last-Event-ID header (EventSource), half with ?lastEventId= (what the editor sends).
    const after = await Promise.all(
      lastIds.map(async (lastEventId, i) =>
        i % 2 === 0 ? openSse(url, { lastEventId }) : openSse(`${url}?lastEventId=${lastEventId}`, { streamToken: await mintStreamToken(url) }),
      ),
    );
    open.push(...after);

    // The run goes on to the end; every reconnected client sees its last node complete.
    await api.waitForStatus(P, `n${NODES - 1}`, ["completed"], 180_000).catch(() => undefined);
    const runDeadline = Date.now() + 180_000;
    for (;;) {
      const { runs } = await api.ok("GET", `/pipelines/${P}/runs`);
      if (runs[0]?.status !== "running") {
        expect(runs[0]).toMatchObject({ id: run.run_id, status: "completed" });
        break;
      }
      if (Date.now() > runDeadline) throw new Error("run still running");
      await sleep(250);
    }
    const { rows } = await admin.query("select id, status, state_version from video_production_nodes where pipeline_id = $1", [P]);
    const dbState = new Map(rows.map((r) => [r.id as string, { status: r.status as string, stateVersion: Number(r.state_version) }]));
    expect([...dbState.values()].every((n) => n.status === "completed")).toBe(true);

    // What the stream holds for this pipeline, read from JetStream directly (not through the gateway), until it
    // has been quiet for 2 s (the run is over: nothing more is committed for this pipeline).
    const stored: Array<{ seq: number; eventId: string }> = [];
    const reference = replayEvents(bus, {
      stream: topology.streams.events.name,
      subject: topology.subjects.events(P),
      startSeq: 1,
      onEvent: (seq, payload) => void stored.push({ seq, eventId: (payload as NodeEvent).eventId }),
    });
    for (let seen = -1; seen !== stored.length; ) {
      seen = stored.length;
      await sleep(2000);
    }
    await reference.stop();
    const lastStored = stored.at(-1)!.seq;
    // Every reconnected client gets to the end of the stream for the pipeline.
    await Promise.all(after.map((c) => c.waitFor((events) => nodeEventsOf(events).some((e) => e.seq === lastStored), 60_000)));
    await sleep(1000);

    expect(new Set(stored.map((e) => e.eventId)).size, "no event id stored twice").toBe(stored.length);
    for (let i = 0; i < CLIENTS; i++) {
      const b = before[i]!.events;
      const a = after[i]!.events;
      const snapshot = b.find((e) => e.event === "snapshot")!;
      expect(snapshot, `client ${i} got a snapshot`).toBeDefined();
      expect(
        a.some((e) => e.event === "snapshot"),
        `client ${i} resumed without a new snapshot`,
      ).toBe(false);
      const events = [...nodeEventsOf(b), ...nodeEventsOf(a)];
      const seqs = events.map((e) => e.seq);
      expect(
        seqs.every((s, k) => k === 0 || s > seqs[k - 1]!),
        `client ${i}: ids strictly increasing across the reconnect`,
      ).toBe(true);
      const expected = stored.filter((e) => e.seq > Number(snapshot.id));
      expect(
        events.map((e) => [e.seq, e.eventId]),
        `client ${i}: exactly the stored events after its snapshot`,
      ).toEqual(expected.map((e) => [e.seq, e.eventId]));

      // Converged: the snapshot plus the events, newest stateVersion per node, equals the database.
      const snap = snapshot.data as Snapshot;
      const state = new Map(snap.pipeline.nodes.map((n) => [n.id, { status: n.status, stateVersion: snap.stateVersions[n.id]! }]));
      for (const e of events) {
        const current = state.get(e.nodeId);
        if (!current || e.stateVersion >= current.stateVersion) state.set(e.nodeId, { status: e.status, stateVersion: e.stateVersion });
      }
      expect(state, `client ${i}: final state equals the database's`).toEqual(dbState);
    }
    console.log(`[gateway-sse] ${CLIENTS} clients; completed at kill ${completedAtKill}, at restart ${completedAtRestart}; ${stored.length} events stored`);
    expect(completedAtRestart, "the run committed while the gateway was down").toBeGreaterThan(completedAtKill);
  });
});
