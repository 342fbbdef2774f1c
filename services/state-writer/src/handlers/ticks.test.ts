import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type pg from "pg";
import type { StateEvent } from "@vp/contracts";
import { claimQueued, completeNode, createTickPool, getNode, type Queryable, type TickDb } from "@vp/db";
import type { Logger } from "@vp/telemetry";
import { createTestDatabase, insertNodeFixture, insertPipelineFixture, type TestDatabase } from "../../../../packages/testkit/src/db";
import { createTestBus, type TestBus } from "../../../../packages/testkit/src/nats";
import { createApplyStateEvent, eventIdOf } from "./apply-state-event";
import { createBatchingQueue, createCommittedPublisher, type PublishCommitted } from "./committed";
import { createPipelineMetadataLog } from "./pipeline-metadata";
import { createTickQueue, type TickAnswer } from "./ticks";

let t: TestDatabase;
let sw: pg.Pool;
let tickPool: pg.Pool;
let n = 0;
let P: string;

beforeAll(async () => {
  t = await createTestDatabase();
  sw = t.pools.stateWriter;
  tickPool = createTickPool({ url: t.urls.stateWriter, applicationName: "vp-test-ticks", max: 8, onError: () => {} });
});
afterAll(async () => {
  await tickPool?.end();
  await t?.drop();
});
beforeEach(async () => {
  P = `tq${++n}`;
  await insertPipelineFixture(t.admin, { id: P });
});

const silent = { info() {}, warn() {}, debug() {}, error() {} } as unknown as Logger;
const ctx = { logger: silent };
const video = { type: "video" as const, s3Key: "pipelines/p/nodes/n/j/output.mp4", duration: 3, size: 1000 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const running = (id: string, attempt = 1) => insertNodeFixture(t.admin, { pipelineId: P, id, status: "in_progress", metadata: { jobId: `j-${id}`, attempt } });
const tickOf = (id: string, percent: number, attempt = 1) => ({ pipelineId: P, nodeId: id, jobId: `j-${id}`, attempt, percent });
const progressEvent = (id: string, percent: number, attempt = 1): StateEvent => ({
  v: 1,
  kind: "progress",
  pipelineId: P,
  nodeId: id,
  jobId: `j-${id}`,
  attempt,
  at: new Date().toISOString(),
  percent,
});

interface Published {
  eventId: string;
  nodeId: string;
  status: string;
  stateVersion: number;
  progress: unknown;
  pipelineMetadata: Record<string, unknown>;
}

function recordingPublisher(opts: { failOnceOn?: string } = {}) {
  const published: Published[] = [];
  let failOn = opts.failOnceOn;
  const publishCommitted: PublishCommitted = async (node, pipelineMetadata, eventId) => {
    if (failOn && eventId === failOn) {
      failOn = undefined;
      throw new Error(`publish of ${eventId} failed`);
    }
    published.push({ eventId, nodeId: node.id, status: node.status, stateVersion: node.state_version, progress: node.metadata?.progress, pipelineMetadata });
  };
  return { published, publishCommitted };
}

/** The tick pool, with every write statement delayed by `delayMs` and recorded (which nodes, which percents, overlap). */
function observedTickDb(pool: pg.Pool, delayMs: number) {
  const writes: { nodes: string[]; percents: number[] }[] = [];
  const inFlightByNode = new Map<string, number>();
  let inFlight = 0;
  let maxInFlight = 0;
  let maxPerNode = 0;
  const db: TickDb = {
    async query(config) {
      if (!/^\s*(UPDATE|WITH)/.test(config.text)) return pool.query(config);
      const values = config.values as unknown[];
      const nodes = (Array.isArray(values[1]) ? values[1] : [values[1]]) as string[];
      const percents = (Array.isArray(values[4]) ? values[4] : [values[4]]) as number[];
      writes.push({ nodes, percents });
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      for (const node of nodes) {
        inFlightByNode.set(node, (inFlightByNode.get(node) ?? 0) + 1);
        maxPerNode = Math.max(maxPerNode, inFlightByNode.get(node)!);
      }
      try {
        await sleep(delayMs);
        return await pool.query(config);
      } finally {
        inFlight--;
        for (const node of nodes) inFlightByNode.set(node, inFlightByNode.get(node)! - 1);
      }
    },
  };
  return { db, writes, stats: () => ({ maxInFlight, maxPerNode }) };
}

describe("createTickQueue", () => {
  it("unbatched: ticks of different nodes run concurrently, a node's ticks one at a time in arrival order", async () => {
    for (const id of ["a", "b", "c"]) await running(id);
    const { db, writes, stats } = observedTickDb(tickPool, 60);
    const { published, publishCommitted } = recordingPublisher();
    const tick = createTickQueue({ db, publishCommitted, batchMax: 1, concurrency: 8 });
    const answers = await Promise.all([
      tick(tickOf("a", 1), "a1"),
      tick(tickOf("a", 2), "a2"),
      tick(tickOf("b", 1), "b1"),
      tick(tickOf("a", 3), "a3"),
      tick(tickOf("c", 1), "c1"),
    ]);
    expect(answers.map((a) => a.outcome)).toEqual(["applied", "applied", "applied", "applied", "applied"]);
    expect(stats()).toEqual({ maxInFlight: 3, maxPerNode: 1 });
    // One statement per tick, none coalesced; node a's in arrival order.
    expect(writes.every((w) => w.nodes.length === 1)).toBe(true);
    expect(writes.filter((w) => w.nodes[0] === "a").map((w) => w.percents[0])).toEqual([1, 2, 3]);
    expect(published.filter((p) => p.nodeId === "a").map((p) => [p.eventId, p.stateVersion, p.progress])).toEqual([
      ["a1", 1, 1],
      ["a2", 2, 2],
      ["a3", 3, 3],
    ]);
    expect(await getNode(t.admin, P, "a")).toMatchObject({ state_version: 3, metadata: { progress: 3 } });
  });

  it("batched: coalesces a node's waiting ticks (the latest is written once), writes several nodes in one statement, answers every caller", async () => {
    for (const id of ["a", "b"]) await running(id);
    const { db, writes } = observedTickDb(tickPool, 80);
    const { published, publishCommitted } = recordingPublisher();
    const tick = createTickQueue({ db, publishCommitted, batchMax: 64, concurrency: 1 });
    const first = tick(tickOf("a", 10), "a10");
    await sleep(20); // the first statement is running: the next ticks wait for it
    const rest = [tick(tickOf("a", 20), "a20"), tick(tickOf("a", 30), "a30"), tick(tickOf("a", 40), "a40"), tick(tickOf("b", 50), "b50")];
    const answers = await Promise.all([first, ...rest]);
    // b became ready first (while a's statement ran), a again when it ended.
    expect(writes).toEqual([
      { nodes: ["a"], percents: [10] },
      { nodes: ["b", "a"], percents: [50, 40] },
    ]);
    const summary = (a: TickAnswer) => [a.outcome, a.supersededBy, a.node?.id, a.node?.state_version];
    expect(answers.map(summary)).toEqual([
      ["applied", undefined, "a", 1],
      ["superseded", 40, "a", 2],
      ["superseded", 40, "a", 2],
      ["applied", undefined, "a", 2],
      ["applied", undefined, "b", 1],
    ]);
    expect(published.map((p) => [p.eventId, p.stateVersion, p.progress])).toEqual([
      ["a10", 1, 10],
      ["b50", 1, 50],
      ["a40", 2, 40],
    ]);
    expect(await getNode(t.admin, P, "a")).toMatchObject({ state_version: 2, metadata: { progress: 40 } });
  });

  it("does not coalesce ticks of different attempts; a superseded attempt's tick is rejected with the reason, a tick after completion too", async () => {
    await running("a", 2);
    const { db, writes } = observedTickDb(tickPool, 50);
    const { published, publishCommitted } = recordingPublisher();
    const tick = createTickQueue({ db, publishCommitted, batchMax: 64, concurrency: 1 });
    const busy = tick(tickOf("a", 5, 2), "busy");
    await sleep(10);
    const [, stale, current] = await Promise.all([busy, tick(tickOf("a", 90, 1), "stale"), tick(tickOf("a", 20, 2), "current")]);
    expect(stale).toMatchObject({
      outcome: "rejected",
      code: "stale",
      reason: "Progress of job j-a attempt 1 ignored (status: in_progress, job: j-a, attempt: 2)",
    });
    expect(current).toMatchObject({ outcome: "applied", node: { metadata: { progress: 20 } } });
    expect(writes.map((w) => w.percents)).toEqual([[5], [90], [20]]);

    expect(await completeNode(sw, { pipelineId: P, nodeId: "a", jobId: "j-a", attempt: 2, output: video, cost: 0 })).toMatchObject({ outcome: "applied" });
    const late = await tick(tickOf("a", 99, 2), "late");
    expect(late).toMatchObject({
      outcome: "rejected",
      code: "stale",
      reason: "Progress of job j-a attempt 2 ignored (status: completed, job: j-a, attempt: 2)",
    });
    expect(published.map((p) => p.eventId)).toEqual(["busy", "current"]);
    expect(await getNode(t.admin, P, "a")).toMatchObject({ status: "completed", metadata: { progress: 100 } });
  });

  it("answers a tick whose publish failed with the error, its superseded ticks as superseded; the redelivery publishes the same id without a write", async () => {
    await running("a");
    const { db } = observedTickDb(tickPool, 40);
    const { published, publishCommitted } = recordingPublisher({ failOnceOn: "a30" });
    const tick = createTickQueue({ db, publishCommitted, batchMax: 64, concurrency: 1 });
    const first = tick(tickOf("a", 10), "a10");
    await sleep(10);
    const settled = await Promise.allSettled([first, tick(tickOf("a", 20), "a20"), tick(tickOf("a", 30), "a30")]);
    expect(settled.map((s) => (s.status === "fulfilled" ? s.value.outcome : String(s.reason)))).toEqual([
      "applied",
      "superseded",
      "Error: publish of a30 failed",
    ]);
    // The fact comes back (not acknowledged): already written, published again under the same id.
    const again = await tick(tickOf("a", 30), "a30");
    expect(again).toMatchObject({ outcome: "already", node: { state_version: 2 } });
    expect(published.map((p) => [p.eventId, p.stateVersion])).toEqual([
      ["a10", 1],
      ["a30", 2],
    ]);
  });

  it("publishes the pipeline metadata of a status change that committed while the tick's statement ran", async () => {
    await running("a");
    await insertNodeFixture(t.admin, { pipelineId: P, id: "b" });
    const log = createPipelineMetadataLog();
    const { published, publishCommitted } = recordingPublisher();
    const queue = createBatchingQueue({ db: sw, batchMax: 64, pipelineMetadata: log });
    // The tick's statement runs at once; its result comes back late.
    const slow: TickDb = {
      async query(config) {
        const result = await tickPool.query(config);
        await sleep(150);
        return result;
      },
    };
    const tick = createTickQueue({ db: slow, publishCommitted, batchMax: 64, pipelineMetadata: log });
    const pending = tick(tickOf("a", 10), "a10");
    await sleep(50);
    await queue(
      P,
      (tx) => claimQueued(tx, { pipelineId: P, nodeId: "b", jobId: "j-b" }),
      async (r) => publishCommitted(r.node!, r.pipelineMetadata, "j-b:queued"),
    );
    await pending;
    const [claim, progress] = [published.find((p) => p.eventId === "j-b:queued")!, published.find((p) => p.eventId === "a10")!];
    expect(claim.pipelineMetadata.progress).toMatchObject({ queued: 1, in_progress: 1 });
    expect(progress.pipelineMetadata).toEqual(claim.pipelineMetadata);
  });
});

/** A pool whose transactions record the synchronous_commit in force at their COMMIT. */
function recordingCommits(pool: pg.Pool) {
  const settings: string[] = [];
  const db = {
    query: (text: string, values?: unknown[]) => pool.query(text, values),
    connect: async () => {
      const client = await pool.connect();
      return {
        async query(text: string, values?: unknown[]) {
          if (text === "COMMIT") settings.push((await client.query<{ s: string }>(`SELECT current_setting('synchronous_commit') AS s`)).rows[0]!.s);
          return client.query(text, values);
        },
        release: (err?: Error) => client.release(err),
      };
    },
  } as unknown as Queryable;
  return { db, settings };
}

describe("durability", () => {
  it("status changes commit with synchronous_commit on; ticks go to the tick pool, not into them", async () => {
    await insertNodeFixture(t.admin, { pipelineId: P, id: "a", status: "in_progress", metadata: { jobId: "j-a", attempt: 1 } });
    const { db, settings } = recordingCommits(sw);
    const { published, publishCommitted } = recordingPublisher();
    const queue = createBatchingQueue({ db, batchMax: 64 });
    const ticks = createTickQueue({ db: tickPool, publishCommitted, batchMax: 64 });
    const apply = createApplyStateEvent({ db, publishCommitted, queue, ticks });
    await apply(progressEvent("a", 50), ctx);
    await apply({ v: 1, kind: "completed", pipelineId: P, nodeId: "a", jobId: "j-a", attempt: 1, at: new Date().toISOString(), output: video, cost: 0.2 }, ctx);
    await apply({ v: 1, kind: "failed", pipelineId: P, nodeId: "a", jobId: "j-a", attempt: 1, at: new Date().toISOString(), error: "x" }, ctx);
    // Two transactions, the completion and the rejected failure, both durable; the tick was not one of them.
    expect(settings).toEqual(["on", "on"]);
    expect(published.map((p) => [p.eventId, p.status, p.stateVersion])).toEqual([
      ["j-a:progress:1:50", "in_progress", 1],
      ["j-a:completed", "completed", 2],
    ]);
  });

  it("without a tick queue a tick is a transaction of the pipeline's queue, committed asynchronously", async () => {
    await running("a");
    const { db, settings } = recordingCommits(sw);
    const { published, publishCommitted } = recordingPublisher();
    const apply = createApplyStateEvent({ db, publishCommitted, queue: createBatchingQueue({ db, batchMax: 64 }) });
    await apply(progressEvent("a", 12.5), ctx);
    expect(settings).toEqual(["off"]);
    expect(published.map((p) => [p.eventId, p.stateVersion])).toEqual([["j-a:progress:1:12.5", 1]]);
  });
});

describe("a tick's event on VP_EVENTS", () => {
  let bus: TestBus;
  beforeAll(async () => {
    bus = await createTestBus();
  });
  afterAll(async () => {
    await bus?.cleanup();
  });

  it("reaches the stream with the node's committed stateVersion and the event id of the fact", async () => {
    await running("a");
    const publishCommitted = createCommittedPublisher({ bus: bus.bus, topology: bus.topology, logger: silent });
    const ticks = createTickQueue({ db: tickPool, publishCommitted, batchMax: 64 });
    const apply = createApplyStateEvent({ db: sw, publishCommitted, queue: createBatchingQueue({ db: sw, batchMax: 64 }), ticks });
    await apply(progressEvent("a", 25), ctx);
    await apply(progressEvent("a", 60.5), ctx);
    const stream = bus.topology.streams.events.name;
    const info = await bus.bus.jsm.streams.info(stream);
    const events: Record<string, unknown>[] = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
      const msg = await bus.bus.jsm.streams.getMessage(stream, { seq });
      if (msg) events.push({ subject: msg.subject, msgId: msg.header?.get("Nats-Msg-Id"), ...(msg.json() as Record<string, unknown>) });
    }
    const mine = events.filter((e) => e.pipelineId === P);
    expect(mine.map((e) => [e.subject, e.msgId, e.eventId, e.status, e.stateVersion, (e.metadata as { progress?: number }).progress])).toEqual([
      [bus.topology.subjects.events(P), "j-a:progress:1:25", "j-a:progress:1:25", "in_progress", 1, 25],
      [bus.topology.subjects.events(P), "j-a:progress:1:60.5", "j-a:progress:1:60.5", "in_progress", 2, 60.5],
    ]);
    expect(eventIdOf(progressEvent("a", 60.5))).toBe("j-a:progress:1:60.5");
    expect((await getNode(t.admin, P, "a"))?.state_version).toBe(2);
  });
});
