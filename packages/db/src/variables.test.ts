import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../testkit/src/db";
import { createNode, createPipeline, importPipeline, restoreStructure, updatePipeline, updatePipelineVariables } from "./editor";
import { getPipeline, getPipelineVariables } from "./reader";
import { listRevisions, structureAt } from "./revisions";

let t: TestDatabase;

beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => {
  await t?.drop();
});

const NAME = { name: "name", type: "text" as const, default: "Ada" };
const CLIP = { name: "clip", type: "video" as const, description: "the customer's clip" };

describe("pipeline variables", () => {
  it("start as an empty list, and the column holds only a JSON array", async () => {
    await createPipeline(t.pools.editor, { id: "var-empty", title: "Empty" });
    expect(await getPipelineVariables(t.pools.reader, "var-empty")).toEqual([]);
    expect((await getPipeline(t.pools.reader, "var-empty"))?.variables).toEqual([]);
    expect(await getPipelineVariables(t.pools.reader, "no-such-pipeline")).toBeNull();
    await expect(t.admin.query(`UPDATE video_production_pipelines SET variables = '{"name": "x"}' WHERE id = 'var-empty'`)).rejects.toThrow(
      /video_production_pipelines_variables_array/,
    );
  });

  it("are written by the editor only: the state-writer and the reader cannot change them, every role reads them", async () => {
    await createPipeline(t.pools.editor, { id: "var-roles", title: "Roles" });
    const write = (pool: typeof t.pools.editor) => pool.query(`UPDATE video_production_pipelines SET variables = '[]' WHERE id = 'var-roles'`);
    expect((await write(t.pools.editor)).rowCount).toBe(1);
    await expect(write(t.pools.stateWriter)).rejects.toThrow(/permission denied/);
    await expect(write(t.pools.reader)).rejects.toThrow(/permission denied/);
    for (const pool of [t.pools.reader, t.pools.stateWriter, t.pools.editor]) {
      const { rows } = await pool.query(`SELECT variables FROM video_production_pipelines WHERE id = 'var-roles'`);
      expect(rows).toEqual([{ variables: [] }]);
    }
  });

  it("a change is a structure write: the next revision, recorded with the declarations before and after; the same list records nothing", async () => {
    const ed = t.pools.editor;
    await createPipeline(ed, { id: "var-rev", title: "Rev" });
    const first = await updatePipelineVariables(ed, "var-rev", [NAME], { by: "ana" });
    expect(first).toMatchObject({ revision: 1, variables: [NAME] });
    const second = await updatePipelineVariables(ed, "var-rev", [NAME, CLIP], { by: "ben" });
    expect(second?.revision).toBe(2);
    expect((await updatePipelineVariables(ed, "var-rev", [NAME, CLIP]))?.revision).toBe(2);
    expect(await updatePipelineVariables(ed, "no-such-pipeline", [NAME])).toBeNull();

    expect((await listRevisions(t.pools.reader, "var-rev")).map((r) => [r.revision, r.created_by, r.summary])).toEqual([
      [2, "ben", "Changed the pipeline's variables"],
      [1, "ana", "Changed the pipeline's variables"],
    ]);
    const { rows } = await t.admin.query(`SELECT changes FROM video_production_pipeline_revisions WHERE pipeline_id = 'var-rev' AND revision = 2`);
    expect(rows[0].changes.pipeline.before.variables).toEqual([NAME]);
    expect(rows[0].changes.pipeline.after.variables).toEqual([NAME, CLIP]);
  });

  it("an earlier revision shows and restores the variables it had, across writes that did not touch them", async () => {
    const ed = t.pools.editor;
    await createPipeline(ed, { id: "var-restore", title: "Restore" });
    await updatePipelineVariables(ed, "var-restore", [NAME]); // 1
    await createNode(ed, { pipelineId: "var-restore", id: "s", title: "S", type: "asset", asset: { type: "text", content: "Hi {{name}}" } }); // 2
    await updatePipeline(ed, "var-restore", { title: "Renamed" }); // 3
    await updatePipelineVariables(ed, "var-restore", [{ ...NAME, default: "Grace" }, CLIP]); // 4

    const at2 = await structureAt(t.pools.reader, "var-restore", 2);
    expect(at2?.pipeline).toEqual({ title: "Restore", config: {}, variables: [NAME] });
    const restored = await restoreStructure(ed, "var-restore", at2!);
    expect(restored?.pipeline).toMatchObject({ title: "Restore", variables: [NAME] });
    expect(await getPipelineVariables(t.pools.reader, "var-restore")).toEqual([NAME]);
  });

  it("an import creates the pipeline with its variables", async () => {
    const { pipeline } = await importPipeline(t.pools.editor, {
      pipeline: { id: "var-import", title: "Imported", variables: [NAME] },
      nodes: [{ id: "s", title: "S", type: "asset", asset: { type: "text", content: "Hi {{name}}" } }],
    });
    expect(pipeline.variables).toEqual([NAME]);
    expect(await getPipelineVariables(t.pools.reader, "var-import")).toEqual([NAME]);
  });
});
