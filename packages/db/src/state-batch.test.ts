import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type pg from "pg";
import { createTestDatabase, insertNodeFixture, insertPipelineFixture, type TestDatabase } from "../../testkit/src/db";
import { withTransaction } from "./connection";
import { getNode, getPipelineRow } from "./reader";
import {
  claimQueued,
  claimRunning,
  completeNode,
  failNode,
  observeStateTransactions,
  recordProgress,
  runStateBatch,
  type BatchMember,
  type BatchSettled,
  type StateResult,
} from "./state";

let t: TestDatabase;
let sw: pg.Pool;
let n = 0;
let P: string;

beforeAll(async () => {
  t = await createTestDatabase();
  sw = t.pools.stateWriter;
});
afterAll(async () => {
  observeStateTransactions(undefined);
  await t?.drop();
});
beforeEach(async () => {
  P = `b${++n}`;
  await insertPipelineFixture(t.admin, { id: P });
});

const KEY = "ab".repeat(32);
const video = { type: "video" as const, s3Key: "pipelines/p/nodes/n/j/output.mp4", duration: 3, size: 1000 };

function results(settled: BatchSettled[]): StateResult[] {
  return settled.map((s) => {
    if (!s.ok) throw new Error(`member failed: ${String(s.error)}`);
    return s.result;
  });
}

describe("runStateBatch (group commit)", () => {
  it("answers applied, already and rejected members of one batch each as alone, and writes only the applied", async () => {
    await insertNodeFixture(t.admin, { pipelineId: P, id: "a" });
    await insertNodeFixture(t.admin, { pipelineId: P, id: "b" });
    await insertNodeFixture(t.admin, { pipelineId: P, id: "c", status: "cancelled" });
    const members: BatchMember[] = [
      (tx) => claimQueued(tx, { pipelineId: P, nodeId: "a", jobId: "ja" }),
      (tx) => claimQueued(tx, { pipelineId: P, nodeId: "a", jobId: "ja" }), // the same claim again: already
      (tx) => claimQueued(tx, { pipelineId: P, nodeId: "a", jobId: "other" }), // another job: not_ready
      (tx) => claimQueued(tx, { pipelineId: P, nodeId: "c", jobId: "jc" }), // cancelled: not_ready
      (tx) => claimQueued(tx, { pipelineId: P, nodeId: "missing", jobId: "jm" }),
      (tx) => claimQueued(tx, { pipelineId: P, nodeId: "b", jobId: "jb" }),
    ];
    const r = results(await runStateBatch(sw, P, members));
    expect(r.map((x) => x.outcome)).toEqual(["applied", "already", "rejected", "rejected", "rejected", "applied"]);
    expect(r.map((x) => x.code)).toEqual([undefined, undefined, "not_ready", "not_ready", "not_found", undefined]);
    expect(r[1]!.node).toMatchObject({ status: "queued", state_version: 1, metadata: { jobId: "ja" } });
    expect(await getNode(t.admin, P, "a")).toMatchObject({ status: "queued", state_version: 1, metadata: { jobId: "ja" } });
    expect(await getNode(t.admin, P, "b")).toMatchObject({ status: "queued", state_version: 1, metadata: { jobId: "jb" } });
    expect(await getNode(t.admin, P, "c")).toMatchObject({ status: "cancelled", state_version: 0 });
  });

  it("rolls a failing member back to its savepoint, answers it with its error, and commits the others", async () => {
    await insertNodeFixture(t.admin, { pipelineId: P, id: "a" });
    await insertNodeFixture(t.admin, { pipelineId: P, id: "b" });
    const failing: BatchMember = (tx) =>
      withTransaction(tx, async (c) => {
        // A write that must not survive, then an error.
        await c.query(`UPDATE video_production_nodes SET metadata = COALESCE(metadata, '{}'::jsonb) || '{"leak":1}' WHERE pipeline_id = $1 AND id = 'b'`, [P]);
        await c.query(`SELECT 1 / 0`);
        throw new Error("unreachable");
      });
    const settled = await runStateBatch(sw, P, [
      (tx) => claimQueued(tx, { pipelineId: P, nodeId: "a", jobId: "ja" }),
      failing,
      (tx) => claimQueued(tx, { pipelineId: P, nodeId: "b", jobId: "jb" }),
    ]);
    expect(settled[0]).toMatchObject({ ok: true, result: { outcome: "applied" } });
    expect(settled[1]!.ok).toBe(false);
    expect((settled[1] as { error: { code?: string } }).error.code).toBe("22012"); // division_by_zero
    expect(settled[2]).toMatchObject({ ok: true, result: { outcome: "applied", node: { status: "queued" } } });
    const b = await getNode(t.admin, P, "b");
    expect(b?.metadata).not.toHaveProperty("leak");
    expect(b).toMatchObject({ status: "queued", state_version: 1 });
    expect(await getNode(t.admin, P, "a")).toMatchObject({ status: "queued", state_version: 1 });
  });

  it("fails the whole batch, committing nothing, when a member's error left the transaction aborted", async () => {
    await insertNodeFixture(t.admin, { pipelineId: P, id: "a" });
    await insertNodeFixture(t.admin, { pipelineId: P, id: "b" });
    const outsideSavepoint: BatchMember = async (tx) => {
      await tx.query(`SELECT 1 / 0`);
      throw new Error("unreachable");
    };
    await expect(
      runStateBatch(sw, P, [
        (tx) => claimQueued(tx, { pipelineId: P, nodeId: "a", jobId: "ja" }),
        outsideSavepoint,
        (tx) => claimQueued(tx, { pipelineId: P, nodeId: "b", jobId: "jb" }),
      ]),
    ).rejects.toMatchObject({ code: "25P02" });
    expect(await getNode(t.admin, P, "a")).toMatchObject({ status: "pending", state_version: 0 });
    expect(await getNode(t.admin, P, "b")).toMatchObject({ status: "pending", state_version: 0 });
  });

  it("applies a node's claim, start, progress and completion in one batch in order; later members see earlier writes", async () => {
    await insertNodeFixture(t.admin, { pipelineId: P, id: "a", metadata: { cacheKey: KEY } });
    const ids = { pipelineId: P, nodeId: "a", jobId: "ja", attempt: 1 };
    const r = results(
      await runStateBatch(sw, P, [
        (tx) => claimQueued(tx, { pipelineId: P, nodeId: "a", jobId: "ja", cacheKey: KEY }),
        (tx) => claimRunning(tx, ids),
        (tx) => recordProgress(tx, { ...ids, percent: 40 }),
        (tx) => completeNode(tx, { ...ids, output: video, cost: 0.25 }),
        (tx) => completeNode(tx, { ...ids, output: video, cost: 0.25 }), // redelivered completion: already
        (tx) => failNode(tx, { ...ids, error: "late" }), // a failure after completion: stale
      ]),
    );
    expect(r.map((x) => x.outcome)).toEqual(["applied", "applied", "applied", "applied", "already", "rejected"]);
    expect(r.slice(0, 4).map((x) => [x.node?.status, x.node?.state_version])).toEqual([
      ["queued", 1],
      ["in_progress", 2],
      ["in_progress", 3],
      ["completed", 4],
    ]);
    const stored = await getNode(t.admin, P, "a");
    expect(stored).toMatchObject({ status: "completed", state_version: 4, metadata: { jobId: "ja", attempt: 1, cost: 0.25, progress: 100 } });
    // The cache is filled inside the completing transaction, in a batch too.
    const cache = await t.admin.query(`SELECT cost, job_id FROM video_production_cache WHERE cache_key = $1`, [KEY]);
    expect(cache.rows).toHaveLength(1);
    expect(Number(cache.rows[0].cost)).toBe(0.25);
    expect(cache.rows[0].job_id).toBe("ja");
  });

  it("recomputes the pipeline's progress once and gives every member the metadata the batch committed", async () => {
    await insertNodeFixture(t.admin, { pipelineId: P, id: "done", traits: ["completed"] }); // cost 0.05
    for (const id of ["a", "b", "c"]) await insertNodeFixture(t.admin, { pipelineId: P, id });
    const r = results(
      await runStateBatch(sw, P, [
        (tx) => claimQueued(tx, { pipelineId: P, nodeId: "a", jobId: "ja" }),
        (tx) => claimQueued(tx, { pipelineId: P, nodeId: "b", jobId: "jb" }),
        (tx) => claimRunning(tx, { pipelineId: P, nodeId: "b", jobId: "jb", attempt: 1 }),
        (tx) => completeNode(tx, { pipelineId: P, nodeId: "b", jobId: "jb", attempt: 1, output: video, cost: 0.1 }),
        (tx) => claimQueued(tx, { pipelineId: P, nodeId: "a", jobId: "other" }), // rejected
      ]),
    );
    const expected = { completed: 2, in_progress: 0, pending: 1, failed: 0, queued: 1, cancelled: 0, total: 4 };
    for (const x of r) expect(x.pipelineMetadata.progress).toEqual(expected);
    expect(r[3]!.pipelineMetadata.totalCost).toBeCloseTo(0.15, 10);
    const stored = await getPipelineRow(t.admin, P);
    expect(stored?.metadata).toEqual(r[0]!.pipelineMetadata);
    expect(stored?.metadata?.estimatedTotalCost).toBe(0); // other keys survive (partial write)
  });

  it("runs a single member as its own transaction, and rejects every member of a missing pipeline", async () => {
    await insertNodeFixture(t.admin, { pipelineId: P, id: "a" });
    const [one] = results(await runStateBatch(sw, P, [(tx) => claimQueued(tx, { pipelineId: P, nodeId: "a", jobId: "ja" })]));
    expect(one).toMatchObject({ outcome: "applied", pipelineMetadata: { progress: { queued: 1, total: 1 } } });
    const missing = results(
      await runStateBatch(sw, "nope", [
        (tx) => claimQueued(tx, { pipelineId: "nope", nodeId: "a", jobId: "j" }),
        (tx) => claimQueued(tx, { pipelineId: "nope", nodeId: "b", jobId: "j" }),
      ]),
    );
    expect(missing.map((x) => [x.outcome, x.code, x.pipelineMetadata])).toEqual([
      ["rejected", "not_found", {}],
      ["rejected", "not_found", {}],
    ]);
  });

  it("reports each member's transaction to the metrics hook", async () => {
    await insertNodeFixture(t.admin, { pipelineId: P, id: "a" });
    const seen: string[] = [];
    observeStateTransactions((_s, outcome) => seen.push(outcome));
    try {
      await runStateBatch(sw, P, [
        (tx) => claimQueued(tx, { pipelineId: P, nodeId: "a", jobId: "ja" }),
        (tx) => claimQueued(tx, { pipelineId: P, nodeId: "a", jobId: "ja" }),
        (tx) => claimQueued(tx, { pipelineId: P, nodeId: "a", jobId: "jx" }),
      ]);
    } finally {
      observeStateTransactions(undefined);
    }
    expect(seen).toEqual(["applied", "already", "rejected"]);
  });
});
