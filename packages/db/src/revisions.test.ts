import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../testkit/src/db";
import { createNode, createPipeline, deleteNode, importPipeline, restoreStructure, updateNodeStructure, updatePipeline } from "./editor";
import { ConflictError, StaleRevisionError } from "./errors";
import { getPipeline } from "./reader";
import { listRevisions, structureAt } from "./revisions";

let t: TestDatabase;

beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => {
  await t?.drop();
});

const nodeRevision = async (pipelineId: string, nodeId: string) =>
  Number((await t.admin.query(`SELECT revision FROM video_production_nodes WHERE pipeline_id = $1 AND id = $2`, [pipelineId, nodeId])).rows[0]?.revision);

describe("structure revisions", () => {
  it("records every structure write as the pipeline's next revision, with who and what changed", async () => {
    const ed = t.pools.editor;
    const P = "rev-log";
    await createPipeline(ed, { id: P, title: "Launch" });
    const a = await createNode(ed, { pipelineId: P, id: "script", title: "Script", type: "asset", asset: { type: "text", content: "Hi" }, by: "ana" });
    expect(Number(a.revision)).toBe(1);
    await createNode(ed, { pipelineId: P, id: "voice", title: "Voice", type: "generate-voiceover", inputs: { text: ["script"] }, by: "ana" });
    await updateNodeStructure(ed, P, "voice", { configPatch: { speed: 1.2 } }, undefined, { by: "ben" });
    await updateNodeStructure(ed, P, "voice", { position: { x: 10, y: 20 } }, undefined, { by: "ben" });
    await updateNodeStructure(ed, P, "script", { title: "Opening" }, undefined, { by: "ana" });
    await updatePipeline(ed, P, { title: "Launch v2" }, { by: "ana" });
    expect(await deleteNode(ed, P, "voice", { by: "ben" })).toBe(7);

    const log = await listRevisions(t.pools.reader, P);
    expect(log.map((r) => [r.revision, r.created_by, r.summary])).toEqual([
      [7, "ben", "Removed Voice"],
      [6, "ana", "Renamed the pipeline to Launch v2"],
      [5, "ana", "Renamed Script to Opening"],
      [4, "ben", "Moved Voice"],
      [3, "ben", "Changed config of Voice"],
      [2, "ana", "Added Voice"],
      [1, "ana", "Added Script"],
    ]);
    expect((await listRevisions(t.pools.reader, P, { before: 3, limit: 1 })).map((r) => r.revision)).toEqual([2]);
    expect((await getPipeline(t.pools.reader, P))?.revision).toBe(7);
    expect(await nodeRevision(P, "script")).toBe(5);
  });

  it("writes nothing and records no revision for a patch that changes nothing", async () => {
    const ed = t.pools.editor;
    const P = "rev-same";
    await createPipeline(ed, { id: P, title: "Same" });
    await createNode(ed, { pipelineId: P, id: "v", title: "V", type: "generate-voiceover", config: { speed: 1 } });
    const row = await updateNodeStructure(ed, P, "v", { configPatch: { speed: 1 } });
    expect(Number(row?.revision)).toBe(1);
    expect((await updatePipeline(ed, P, { title: "Same" }))?.revision).toBe(1);
    expect((await listRevisions(t.pools.reader, P)).map((r) => r.revision)).toEqual([1]);
  });

  it("refuses a conditional write based on an older revision of the node and keeps the newer value", async () => {
    const ed = t.pools.editor;
    const P = "rev-match";
    await createPipeline(ed, { id: P, title: "Match" });
    await createNode(ed, { pipelineId: P, id: "v", title: "V", type: "generate-voiceover", config: { speed: 1 } });
    await createNode(ed, { pipelineId: P, id: "w", title: "W", type: "generate-voiceover" });
    // Another node's change does not conflict: each node keeps the revision of its own last change.
    const first = await updateNodeStructure(ed, P, "v", { configPatch: { speed: 1.5 } }, undefined, { ifRevision: 1, by: "tab-a" });
    expect(Number(first?.revision)).toBe(3);
    const stale = updateNodeStructure(ed, P, "v", { configPatch: { speed: 0.8 } }, undefined, { ifRevision: 1, by: "tab-b" });
    await expect(stale).rejects.toBeInstanceOf(StaleRevisionError);
    const error = (await stale.catch((e) => e)) as StaleRevisionError;
    expect(error.current?.config).toEqual({ speed: 1.5 });
    expect(Number(error.current?.revision)).toBe(3);
    await expect(deleteNode(ed, P, "v", { ifRevision: 1 })).rejects.toBeInstanceOf(StaleRevisionError);
    const { rows } = await t.admin.query(`SELECT config FROM video_production_nodes WHERE pipeline_id = $1 AND id = 'v'`, [P]);
    expect(rows[0].config).toEqual({ speed: 1.5 });
    expect((await getPipeline(t.pools.reader, P))?.revision).toBe(3);
    expect(await deleteNode(ed, P, "v", { ifRevision: 3 })).toBe(4);
  });

  it("rebuilds any earlier revision and restores it as a new revision", async () => {
    const ed = t.pools.editor;
    const P = "rev-restore";
    const { pipeline } = await importPipeline(
      ed,
      {
        pipeline: { id: P, title: "Doc" },
        nodes: [
          { id: "script", title: "Script", type: "asset", asset: { type: "text", content: "Hello" } },
          { id: "voice", title: "Voice", type: "generate-voiceover", inputs: { text: ["script"] }, config: { speed: 1 } },
        ],
      },
      undefined,
      { by: "ana" },
    );
    expect(pipeline.revision).toBe(1);
    await updateNodeStructure(ed, P, "voice", { configPatch: { speed: 2 }, configRemove: [] }, undefined, { by: "ben" }); // 2
    await updateNodeStructure(ed, P, "script", { assetPatch: { content: "Bye" } }); // 3
    await createNode(ed, { pipelineId: P, id: "extra", title: "Extra", type: "asset", asset: { type: "text", content: "x" } }); // 4
    await updateNodeStructure(ed, P, "voice", { inputsPatch: { text: [] } }); // 5
    await deleteNode(ed, P, "script"); // 6
    await updatePipeline(ed, P, { title: "Doc renamed", configPatch: { maxCost: 2 } }); // 7

    const at1 = await structureAt(t.pools.reader, P, 1);
    expect(at1?.current).toBe(7);
    expect(at1?.entry?.summary).toBe("Imported 2 nodes");
    expect(at1?.pipeline).toEqual({ title: "Doc", config: {}, variables: [] });
    expect([...at1!.nodes.keys()].sort()).toEqual(["script", "voice"]);
    expect(at1?.nodes.get("script")?.asset).toEqual({ type: "text", content: "Hello" });
    expect(at1?.nodes.get("voice")).toMatchObject({ config: { speed: 1 }, inputs: { text: ["script"] } });
    const at4 = await structureAt(t.pools.reader, P, 4);
    expect([...at4!.nodes.keys()].sort()).toEqual(["extra", "script", "voice"]);
    expect(at4?.nodes.get("script")?.asset).toEqual({ type: "text", content: "Bye" });
    expect(at4?.nodes.get("voice")?.config).toEqual({ speed: 2 });
    expect(await structureAt(t.pools.reader, P, 8)).toBeNull();
    expect((await structureAt(t.pools.reader, P, 0))?.nodes.size).toBe(0);

    const restored = await restoreStructure(ed, P, at1!, undefined, { by: "ana" });
    expect(restored?.revision).toBe(8);
    expect(restored?.removed).toEqual(["extra"]);
    expect(restored?.written.map((n) => n.id).sort()).toEqual(["script", "voice"]);
    const { rows } = await t.admin.query(`SELECT id, title, inputs, config, asset, status FROM video_production_nodes WHERE pipeline_id = $1 ORDER BY id`, [P]);
    expect(rows).toEqual([
      { id: "script", title: "Script", inputs: {}, config: {}, asset: { type: "text", content: "Hello" }, status: "pending" },
      { id: "voice", title: "Voice", inputs: { text: ["script"] }, config: { speed: 1 }, asset: null, status: "pending" },
    ]);
    expect(await getPipeline(t.pools.reader, P)).toMatchObject({ title: "Doc", config: {}, revision: 8 });
    expect((await listRevisions(t.pools.reader, P, { limit: 1 }))[0]).toMatchObject({ revision: 8, created_by: "ana", summary: "Restored revision 1" });
    // The restore is a revision like any other: undoing it rebuilds revision 7.
    const at7 = await structureAt(t.pools.reader, P, 7);
    expect([...at7!.nodes.keys()].sort()).toEqual(["extra", "voice"]);
    expect(at7?.pipeline).toEqual({ title: "Doc renamed", config: { maxCost: 2 }, variables: [] });

    // A restore read before another write is refused rather than undoing that write unseen.
    const stale = await structureAt(t.pools.reader, P, 7);
    await updateNodeStructure(ed, P, "voice", { title: "Narration" });
    await expect(restoreStructure(ed, P, stale!)).rejects.toBeInstanceOf(StaleRevisionError);
  });

  it("never removes a queued or running node in a restore", async () => {
    const ed = t.pools.editor;
    const P = "rev-busy";
    await createPipeline(ed, { id: P, title: "Busy" });
    await createNode(ed, { pipelineId: P, id: "a", title: "A", type: "asset", asset: { type: "text", content: "a" } });
    await t.admin.query(`UPDATE video_production_nodes SET status = 'in_progress' WHERE pipeline_id = $1`, [P]);
    const empty = await structureAt(t.pools.reader, P, 0);
    await expect(restoreStructure(ed, P, empty!)).rejects.toThrow(/A is running/);
    await expect(restoreStructure(ed, P, empty!)).rejects.toBeInstanceOf(ConflictError);
    expect((await getPipeline(t.pools.reader, P))?.revision).toBe(1);
  });

  it("lets only the editor record revisions", async () => {
    for (const pool of [t.pools.reader, t.pools.stateWriter]) {
      await expect(
        pool.query(
          `INSERT INTO video_production_pipeline_revisions (pipeline_id, revision, created_by, summary, changes) VALUES ('rev-log', 99, 'x', 'x', '{}')`,
        ),
      ).rejects.toThrow(/permission denied/);
      await expect(pool.query(`UPDATE video_production_pipelines SET revision = 0`)).rejects.toThrow(/permission denied/);
    }
    await expect(t.pools.editor.query(`UPDATE video_production_pipeline_revisions SET summary = 'rewritten'`)).rejects.toThrow(/permission denied/);
    await expect(t.pools.editor.query(`DELETE FROM video_production_pipeline_revisions`)).rejects.toThrow(/permission denied/);
  });
});
