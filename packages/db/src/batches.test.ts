import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, insertPipelineFixture, type TestDatabase } from "../../testkit/src/db";
import {
  createBatch,
  getBatch,
  listActiveBatches,
  listBatchRows,
  listBatchRowsWithRuns,
  listBatches,
  setBatchStatus,
  updateBatch,
  updateBatchRow,
  withBatchDriverLock,
  type NewBatchRow,
} from "./batches";
import { listNodes } from "./reader";
import { createRun, finishRun } from "./runs";

let t: TestDatabase;

beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => {
  await t?.drop();
});

const rowOf = (index: number, name: string): NewBatchRow => ({
  index,
  values: { name },
  pipeline: {
    pipeline: { id: randomUUID(), title: `Greeting (row ${index})`, config: { maxCost: 5 } },
    nodes: [
      { id: "script", title: "Script", type: "asset", inputs: {}, config: {}, asset: { type: "text", content: "Hello {{name}}" } },
      { id: "voice", title: "Voice", type: "generate-voiceover", inputs: { script: ["script"] }, config: { provider: "local" } },
    ],
  },
  variables: [{ name: "name", type: "text", default: name }],
});

async function newBatch(rows = [rowOf(1, "Ada"), rowOf(2, "Grace")]) {
  const template = await insertPipelineFixture(t.admin);
  const id = randomUUID();
  const created = await createBatch(t.pools.editor, {
    id,
    pipelineId: template.id,
    concurrency: 4,
    maxCost: null,
    outputNodeId: "voice",
    estimate: { total: 0 },
    createdBy: "dev",
    rows,
  });
  return { template, id, ...created };
}

describe("batch queries (editor role)", () => {
  it("creates the batch, a pipeline per row (marked with its batch and row, variables set) and the rows, waiting", async () => {
    const { template, id, batch, rows } = await newBatch();
    expect(batch).toMatchObject({ id, pipeline_id: template.id, status: "running", concurrency: 4, counts: { waiting: 2 }, total_cost: 0 });
    expect(rows.map((r) => [r.index, r.status, r.values])).toEqual([
      [1, "waiting", { name: "Ada" }],
      [2, "waiting", { name: "Grace" }],
    ]);
    const { rows: pipelines } = await t.admin.query(
      `SELECT id, batch_id, batch_row, variables, config FROM video_production_pipelines WHERE batch_id = $1 ORDER BY batch_row`,
      [id],
    );
    expect(pipelines.map((p) => [p.batch_row, p.variables[0].default, p.config.maxCost])).toEqual([
      [1, "Ada", 5],
      [2, "Grace", 5],
    ]);
    expect(pipelines.map((p) => p.id)).toEqual(rows.map((r) => r.pipeline_id));
    expect((await listNodes(t.pools.reader, rows[0]!.pipeline_id!)).map((n) => n.id).sort()).toEqual(["script", "voice"]);
    expect((await listBatches(t.pools.reader, template.id)).map((b) => b.id)).toEqual([id]);
  });

  it("creates nothing when one row's pipeline cannot be written", async () => {
    const template = await insertPipelineFixture(t.admin);
    const bad = rowOf(2, "Grace");
    bad.pipeline.nodes = [...bad.pipeline.nodes, bad.pipeline.nodes[0]!]; // the same node id twice
    const id = randomUUID();
    await expect(
      createBatch(t.pools.editor, {
        id,
        pipelineId: template.id,
        concurrency: 2,
        maxCost: null,
        outputNodeId: null,
        estimate: {},
        createdBy: "dev",
        rows: [rowOf(1, "Ada"), bad],
      }),
    ).rejects.toThrow(/already exists/);
    expect(await getBatch(t.pools.reader, id)).toBeNull();
    const { rows } = await t.admin.query(`SELECT count(*)::int AS n FROM video_production_pipelines WHERE title LIKE 'Greeting (row %' AND batch_id IS NULL`);
    expect(rows[0].n).toBe(0);
  });

  it("reads each row with its run, and writes a row only from the statuses and run it was decided on", async () => {
    const { id, rows } = await newBatch();
    const runId = randomUUID();
    expect(await updateBatchRow(t.pools.editor, id, 1, { status: "running", runId }, { from: ["waiting"] })).toMatchObject({
      status: "running",
      run_id: runId,
    });
    expect(await updateBatchRow(t.pools.editor, id, 1, { status: "running", runId: "other" }, { from: ["waiting"] })).toBeNull();
    let read = await listBatchRowsWithRuns(t.pools.editor, id);
    expect(read[0]!.run).toBeNull();

    await createRun(t.pools.stateWriter, { id: runId, pipelineId: rows[0]!.pipeline_id!, kind: "all", nodeIds: ["script", "voice"] });
    await finishRun(t.pools.stateWriter, { id: runId, status: "completed", summary: { totalCost: 0.25, costSaved: 0 } });
    read = await listBatchRowsWithRuns(t.pools.editor, id);
    expect(read[0]!.run).toMatchObject({ status: "completed", metadata: { totalCost: 0.25 } });

    expect(await updateBatchRow(t.pools.editor, id, 1, { status: "completed" }, { from: ["running"], runId: "another run" })).toBeNull();
    const done = await updateBatchRow(
      t.pools.editor,
      id,
      1,
      { status: "completed", cost: 0.25, costSaved: 0, output: { nodeId: "voice", s3Key: "k" }, error: null },
      { from: ["running"], runId },
    );
    expect(done).toMatchObject({ status: "completed", cost: 0.25, cost_saved: 0, output: { nodeId: "voice" }, error: null, run_id: runId });
    expect((await listBatchRows(t.pools.reader, id)).map((r) => r.status)).toEqual(["completed", "waiting"]);
  });

  it("records totals, ends and reopens a batch; the driver lock is held by one caller at a time", async () => {
    const { id } = await newBatch();
    expect((await listActiveBatches(t.pools.editor)).map((b) => b.id)).toContain(id);
    const counts = { waiting: 0, running: 0, completed: 2, failed: 0, cancelled: 0 };
    const ended = await updateBatch(t.pools.editor, id, { counts, totalCost: 0.5, costSaved: 0.2, status: "completed", finished: true });
    expect(ended).toMatchObject({ status: "completed", total_cost: 0.5, cost_saved: 0.2, counts });
    expect(ended!.finished_at).toBeInstanceOf(Date);
    expect((await listActiveBatches(t.pools.editor)).map((b) => b.id)).not.toContain(id);
    expect(await setBatchStatus(t.pools.editor, id, "running", { reopen: true })).toMatchObject({ status: "running", finished_at: null });

    let inner: unknown = "not run";
    const outer = await withBatchDriverLock(t.pools.editor, async () => {
      inner = await withBatchDriverLock(t.pools.editor, async () => "second");
      return "first";
    });
    expect(outer).toBe("first");
    expect(inner).toBeNull();
  });
});

describe("batch grants", () => {
  it("the reader and the state-writer cannot write batches; the editor cannot rewrite a row's values or a batch's owner", async () => {
    const { id, template } = await newBatch();
    await expect(
      t.pools.reader.query(`INSERT INTO video_production_batches (id, pipeline_id, created_by) VALUES ('x', $1, 'r')`, [template.id]),
    ).rejects.toThrow(/permission denied/);
    await expect(t.pools.stateWriter.query(`SELECT * FROM video_production_batch_rows`)).rejects.toThrow(/permission denied/);
    await expect(t.pools.stateWriter.query(`UPDATE video_production_batches SET status = 'failed'`)).rejects.toThrow(/permission denied/);
    await expect(t.pools.editor.query(`UPDATE video_production_batch_rows SET "values" = '{}' WHERE batch_id = $1`, [id])).rejects.toThrow(/permission denied/);
    await expect(t.pools.editor.query(`UPDATE video_production_batches SET created_by = 'x' WHERE id = $1`, [id])).rejects.toThrow(/permission denied/);
    await expect(t.pools.editor.query(`DELETE FROM video_production_batches WHERE id = $1`, [id])).rejects.toThrow(/permission denied/);
    await expect(t.pools.reader.query(`UPDATE video_production_pipelines SET batch_id = NULL`)).rejects.toThrow(/permission denied/);
    // Run state stays the state-writer's: the gateway's editor role still cannot finish a row's run.
    await expect(t.pools.editor.query(`UPDATE video_production_runs SET status = 'completed'`)).rejects.toThrow(/permission denied/);
  });
});
