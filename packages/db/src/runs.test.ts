import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createTestDatabase, insertNodeFixture, insertPipelineFixture, type TestDatabase } from "../../testkit/src/db";
import { getPipelineRow } from "./reader";
import { createRun, finishRun, listRunningRuns, listRuns } from "./runs";
import { cancelNode, claimQueued, resetNode } from "./state";

let t: TestDatabase;
let n = 0;
let P: string;

beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => {
  await t?.drop();
});
beforeEach(async () => {
  P = `rp${++n}`;
  await insertPipelineFixture(t.admin, { id: P });
});

describe("runs", () => {
  it("the state-writer records and finishes a run (idempotently); history lists newest first; running runs are listed", async () => {
    const sw = t.pools.stateWriter;
    const r1 = await createRun(sw, { id: `${P}-r1`, pipelineId: P, kind: "all", nodeIds: ["a", "b"] });
    expect(r1).toMatchObject({ status: "running", node_ids: ["a", "b"], kind: "all", target_node_id: null });
    expect(await createRun(sw, { id: `${P}-r1`, pipelineId: P, kind: "all", nodeIds: ["zzz"] })).toMatchObject({ node_ids: ["a", "b"] });
    await createRun(sw, { id: `${P}-r2`, pipelineId: P, kind: "upstream", targetNodeId: "b", nodeIds: ["b"] });
    expect((await listRunningRuns(t.pools.reader)).map((r) => r.id)).toEqual(expect.arrayContaining([`${P}-r1`, `${P}-r2`]));

    const done = await finishRun(sw, { id: `${P}-r1`, status: "failed", summary: { counts: { completed: 1, failed: 1 } } });
    expect(done).toMatchObject({ status: "failed", metadata: { counts: { completed: 1, failed: 1 } } });
    expect(done!.finished_at).toBeInstanceOf(Date);
    expect(await finishRun(sw, { id: `${P}-r1`, status: "completed", summary: {} })).toMatchObject({ status: "failed" });
    expect((await listRuns(t.pools.reader, P)).map((r) => r.id)).toEqual([`${P}-r2`, `${P}-r1`]);
  });

  it("only the state-writer writes runs; the editor deleting a pipeline removes its runs", async () => {
    await createRun(t.pools.stateWriter, { id: `${P}-r`, pipelineId: P, kind: "all", nodeIds: [] });
    for (const pool of [t.pools.reader, t.pools.editor]) {
      await expect(pool.query(`UPDATE video_production_runs SET status = 'completed'`)).rejects.toThrow(/permission denied/);
      await expect(pool.query(`INSERT INTO video_production_runs (id, pipeline_id, kind, node_ids) VALUES ('x', '${P}', 'all', '[]')`)).rejects.toThrow(
        /permission denied/,
      );
    }
    await expect(t.pools.stateWriter.query(`DELETE FROM video_production_runs`)).rejects.toThrow(/permission denied/);
    expect((await t.pools.editor.query(`SELECT id FROM video_production_runs WHERE pipeline_id = $1`, [P])).rowCount).toBe(1);
    await t.pools.editor.query(`DELETE FROM video_production_pipelines WHERE id = $1`, [P]);
    expect((await t.admin.query(`SELECT id FROM video_production_runs WHERE pipeline_id = $1`, [P])).rowCount).toBe(0);
  });
});

describe("cancelNode and resetNode", () => {
  it("pending/queued -> cancelled with the reason; reset keeps the error in history and recounts progress", async () => {
    const sw = t.pools.stateWriter;
    await insertNodeFixture(t.admin, { pipelineId: P, id: "a" });
    await insertNodeFixture(t.admin, { pipelineId: P, id: "b" });
    await claimQueued(sw, { pipelineId: P, nodeId: "b", jobId: "jb", runId: "run1" });

    const a = await cancelNode(sw, { pipelineId: P, nodeId: "a", reason: "upstream x failed", by: "run1", runId: "run1" });
    expect(a.outcome).toBe("applied");
    expect(a.node).toMatchObject({ status: "cancelled", metadata: { error: "upstream x failed", cancelledBy: "run1", runId: "run1" } });
    expect(a.node!.metadata!.cancelledAt).toMatch(/Z$/);
    expect((await cancelNode(sw, { pipelineId: P, nodeId: "a", reason: "again", by: "u" })).outcome).toBe("already");
    expect((await cancelNode(sw, { pipelineId: P, nodeId: "b", reason: "user", by: "user" })).node).toMatchObject({ status: "cancelled" });
    expect(((await getPipelineRow(t.admin, P))!.metadata as { progress: unknown }).progress).toMatchObject({ cancelled: 2, total: 2 });

    const reset = await resetNode(sw, { pipelineId: P, nodeId: "b" });
    expect(reset.node).toMatchObject({ status: "pending", metadata: { jobId: "jb" } });
    expect(reset.node!.metadata!.error).toBeUndefined();
    expect(reset.node!.metadata!.history).toEqual([expect.objectContaining({ status: "cancelled", error: "user", jobId: "jb", runId: "run1" })]);
    expect((await resetNode(sw, { pipelineId: P, nodeId: "b" })).outcome).toBe("already");
    const claimed = await claimQueued(sw, { pipelineId: P, nodeId: "b", jobId: "jb2" });
    expect(claimed.node!.metadata).toMatchObject({ jobId: "jb2", history: [expect.objectContaining({ error: "user" })] });
    expect(claimed.node!.metadata!.runId).toBeUndefined();
  });

  it("a running or completed node is neither cancelled nor reset here", async () => {
    await insertNodeFixture(t.admin, { pipelineId: P, id: "c", completed: true });
    expect(await cancelNode(t.pools.stateWriter, { pipelineId: P, nodeId: "c", reason: "r", by: "u" })).toMatchObject({
      outcome: "rejected",
      code: "not_ready",
    });
    expect(await resetNode(t.pools.stateWriter, { pipelineId: P, nodeId: "c" })).toMatchObject({ outcome: "rejected" });
  });
});
