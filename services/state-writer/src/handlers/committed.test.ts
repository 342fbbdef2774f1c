import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type pg from "pg";
import type { StateEvent, TransitionReply } from "@vp/contracts";
import { claimQueued, getNode, type Queryable } from "@vp/db";
import { runInContext, type Logger } from "@vp/telemetry";
import { context as otelContext, createContextKey } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { createTestDatabase, insertNodeFixture, insertPipelineFixture, type TestDatabase } from "../../../../packages/testkit/src/db";
import { createApplyStateEvent } from "./apply-state-event";
import { createBatchingQueue, type PublishCommitted } from "./committed";
import { createTransitionHandler } from "./transition";

let t: TestDatabase;
let sw: pg.Pool;
let n = 0;
let P: string;

beforeAll(async () => {
  t = await createTestDatabase();
  sw = t.pools.stateWriter;
});
afterAll(async () => {
  await t?.drop();
});
beforeEach(async () => {
  P = `q${++n}`;
  await insertPipelineFixture(t.admin, { id: P });
});

const silent = { info() {}, warn() {}, debug() {}, error() {} } as unknown as Logger;
const video = { type: "video" as const, s3Key: "pipelines/p/nodes/n/j/output.mp4", duration: 3, size: 1000 };

interface Published {
  eventId: string;
  nodeId: string;
  status: string;
  stateVersion: number;
  progress: unknown;
}

function recordingPublisher(opts: { failOnceOn?: string } = {}) {
  const published: Published[] = [];
  let failOn = opts.failOnceOn;
  const publishCommitted: PublishCommitted = async (node, pipelineMetadata, eventId) => {
    if (failOn && eventId === failOn) {
      failOn = undefined;
      throw new Error(`publish of ${eventId} failed`);
    }
    published.push({ eventId, nodeId: node.id, status: node.status, stateVersion: node.state_version, progress: pipelineMetadata.progress });
  };
  return { published, publishCommitted };
}

describe("createBatchingQueue", () => {
  it("applies requests that queue up behind a running batch together, at most batchMax per transaction, in call order", async () => {
    await insertNodeFixture(t.admin, { pipelineId: P, id: "a" });
    const queue = createBatchingQueue({ db: sw, batchMax: 3 });
    const seen: { i: number; tx: Queryable }[] = [];
    const calls = Array.from({ length: 7 }, (_, i) =>
      queue(
        P,
        async (tx) => {
          seen.push({ i, tx });
          return claimQueued(tx, { pipelineId: P, nodeId: "a", jobId: "ja" });
        },
        async (result) => `${i}:${result.outcome}`,
      ),
    );
    expect(await Promise.all(calls)).toEqual(["0:applied", "1:already", "2:already", "3:already", "4:already", "5:already", "6:already"]);
    expect(seen.map((s) => s.i)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    const transactions = [...new Set(seen.map((s) => s.tx))];
    expect(transactions.map((tx) => seen.filter((s) => s.tx === tx).length)).toEqual([3, 3, 1]);
    // The lone last request runs as its own transaction on the pool, as without batching.
    expect(transactions[2]).toBe(sw);
  });

  it("runs each request's transition and its publish in the caller's trace context, whoever's task drains the batch", async () => {
    // The services' tracer provider installs this context manager; without one, contexts do not propagate at all.
    const manager = new AsyncLocalStorageContextManager().enable();
    otelContext.setGlobalContextManager(manager);
    try {
      await insertNodeFixture(t.admin, { pipelineId: P, id: "a" });
      const caller = createContextKey("caller");
      const queue = createBatchingQueue({ db: sw, batchMax: 64 });
      const seen: string[] = [];
      const callerOf = () => String(otelContext.active().getValue(caller));
      // Four callers, each in its own context, arriving together: the first one's task drains all of them.
      const calls = ["c0", "c1", "c2", "c3"].map((name) =>
        runInContext(otelContext.active().setValue(caller, name), () =>
          queue(
            P,
            async (tx) => {
              seen.push(`apply ${name} in ${callerOf()}`);
              return claimQueued(tx, { pipelineId: P, nodeId: "a", jobId: "ja" });
            },
            async () => {
              seen.push(`after ${name} in ${callerOf()}`);
              return name;
            },
          ),
        ),
      );
      expect(await Promise.all(calls)).toEqual(["c0", "c1", "c2", "c3"]);
      expect(seen).toEqual(
        ["c0", "c1", "c2", "c3"].flatMap((name) => [`apply ${name} in ${name}`]).concat(["c0", "c1", "c2", "c3"].map((name) => `after ${name} in ${name}`)),
      );
    } finally {
      otelContext.disable();
    }
  });

  it("with batchMax 1 runs one transaction per request", async () => {
    await insertNodeFixture(t.admin, { pipelineId: P, id: "a" });
    const queue = createBatchingQueue({ db: sw, batchMax: 1 });
    const txs: Queryable[] = [];
    await Promise.all(
      [0, 1, 2].map(() =>
        queue(
          P,
          (tx) => (txs.push(tx), claimQueued(tx, { pipelineId: P, nodeId: "a", jobId: "ja" })),
          async (r) => r.outcome,
        ),
      ),
    );
    expect(txs).toEqual([sw, sw, sw]);
  });

  it("publishes a batch's committed events in call order with their event ids; claims and completion of one node in one batch", async () => {
    for (const id of ["a", "b", "c"]) await insertNodeFixture(t.admin, { pipelineId: P, id });
    const { published, publishCommitted } = recordingPublisher();
    const queue = createBatchingQueue({ db: sw, batchMax: 64 });
    const transition = createTransitionHandler({ publishCommitted, queue });
    const apply = createApplyStateEvent({ db: sw, publishCommitted, queue });
    const ctx = { logger: silent };
    const fact = (nodeId: string, kind: "completed" | "progress"): StateEvent =>
      kind === "completed"
        ? { v: 1, kind, pipelineId: P, nodeId, jobId: `j-${nodeId}`, attempt: 1, at: new Date().toISOString(), output: video, cost: 0.1 }
        : { v: 1, kind, pipelineId: P, nodeId, jobId: `j-${nodeId}`, attempt: 1, at: new Date().toISOString(), percent: 50 };
    const replies: Promise<TransitionReply | void>[] = [];
    for (const nodeId of ["a", "b"]) {
      replies.push(transition({ v: 1, kind: "claim-queued", pipelineId: P, nodeId, jobId: `j-${nodeId}` }));
      replies.push(transition({ v: 1, kind: "claim-running", pipelineId: P, nodeId, jobId: `j-${nodeId}`, attempt: 1 }));
    }
    replies.push(apply(fact("a", "progress"), ctx));
    replies.push(apply(fact("a", "completed"), ctx));
    replies.push(transition({ v: 1, kind: "claim-queued", pipelineId: P, nodeId: "a", jobId: "another" })); // rejected
    replies.push(apply(fact("a", "completed"), ctx)); // a redelivery: already, published again with the same id
    replies.push(transition({ v: 1, kind: "claim-queued", pipelineId: P, nodeId: "c", jobId: "j-c" }));
    const answered = await Promise.all(replies);

    expect(answered[0]).toMatchObject({ ok: true, node: { status: "queued" } });
    expect(answered[3]).toMatchObject({ ok: true, node: { status: "in_progress" } });
    expect(answered[6]).toMatchObject({ ok: false, code: "not_ready" });
    expect(published.map((p) => [p.eventId, p.status, p.stateVersion])).toEqual([
      ["j-a:queued", "queued", 1],
      ["j-a:running:1", "in_progress", 2],
      ["j-b:queued", "queued", 1],
      ["j-b:running:1", "in_progress", 2],
      ["j-a:progress:1:50", "in_progress", 3],
      ["j-a:completed", "completed", 4],
      ["j-a:completed", "completed", 4],
      ["j-c:queued", "queued", 1],
    ]);
    // Every event of the batch carries the pipeline's progress as the batch committed it.
    const final = { completed: 1, in_progress: 1, pending: 0, failed: 0, queued: 1, cancelled: 0, total: 3 };
    for (const p of published) expect(p.progress).toEqual(final);
    expect(await getNode(t.admin, P, "a")).toMatchObject({ status: "completed", state_version: 4 });
  });

  it("answers a request whose publish failed with its error alone; the others of the batch are answered and published", async () => {
    for (const id of ["a", "b", "c"]) await insertNodeFixture(t.admin, { pipelineId: P, id });
    const { published, publishCommitted } = recordingPublisher({ failOnceOn: "j-b:queued" });
    const queue = createBatchingQueue({ db: sw, batchMax: 64 });
    const transition = createTransitionHandler({ publishCommitted, queue });
    const answers = await Promise.allSettled(
      ["a", "b", "c"].map((nodeId) => transition({ v: 1, kind: "claim-queued", pipelineId: P, nodeId, jobId: `j-${nodeId}` })),
    );
    expect(answers.map((a) => a.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect(published.map((p) => p.eventId)).toEqual(["j-a:queued", "j-c:queued"]);
    // Committed all the same: the caller asks again, gets "already", and the event is published then.
    const again = await transition({ v: 1, kind: "claim-queued", pipelineId: P, nodeId: "b", jobId: "j-b" });
    expect(again).toMatchObject({ ok: true, node: { status: "queued" } });
    expect(published.at(-1)).toMatchObject({ eventId: "j-b:queued", stateVersion: 1 });
    expect(published.map((p) => p.eventId)).toEqual(["j-a:queued", "j-c:queued", "j-b:queued"]);
  });
});
