import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, insertNodeFixture, insertPipelineFixture, type TestDatabase } from "../../testkit/src/db";
import { createNode, importPipeline, updateNodeStructure } from "./editor";
import { ConflictError } from "./errors";
import { countNodesByStatus, getNode, getPipeline, listNodes } from "./reader";

// The editor's canvas position: its own structure column, written only by vp_editor, never part of config.

let t: TestDatabase;
const P = "p-pos";

beforeAll(async () => {
  t = await createTestDatabase();
  await insertPipelineFixture(t.admin, { id: P });
});
afterAll(async () => {
  await t?.drop();
});

describe("node position", () => {
  it("is stored on create and replaced on update without touching config or execution state", async () => {
    await createNode(t.pools.editor, { pipelineId: P, id: "a", title: "A", type: "merge-videos", config: { reencode: "auto" }, position: { x: 10, y: 20 } });
    expect((await getNode(t.pools.reader, P, "a"))!.position).toEqual({ x: 10, y: 20 });
    await insertNodeFixture(t.admin, { pipelineId: P, id: "running", type: "merge-videos", status: "in_progress", metadata: { jobId: "j1", progress: 40 } });

    const moved = await updateNodeStructure(t.pools.editor, P, "running", { position: { x: -5.5, y: 300 } });
    expect(moved).toMatchObject({ position: { x: -5.5, y: 300 }, config: {}, status: "in_progress", metadata: { jobId: "j1", progress: 40 } });
    // A title-only update leaves the position alone.
    const renamed = await updateNodeStructure(t.pools.editor, P, "running", { title: "Renamed" });
    expect(renamed).toMatchObject({ title: "Renamed", position: { x: -5.5, y: 300 } });
  });

  it("is writable by vp_editor only", async () => {
    await expect(t.pools.stateWriter.query(`UPDATE video_production_nodes SET position = '{"x":1,"y":1}' WHERE pipeline_id = $1`, [P])).rejects.toThrow(
      /permission denied/,
    );
    await expect(t.pools.reader.query(`UPDATE video_production_nodes SET position = '{"x":1,"y":1}' WHERE pipeline_id = $1`, [P])).rejects.toThrow(
      /permission denied/,
    );
    const r = await t.pools.editor.query(`UPDATE video_production_nodes SET position = '{"x":1,"y":2}' WHERE pipeline_id = $1 AND id = 'a'`, [P]);
    expect(r.rowCount).toBe(1);
  });

  it("must be an {x, y} of numbers", async () => {
    await expect(t.pools.editor.query(`UPDATE video_production_nodes SET position = '{"x":"left"}' WHERE pipeline_id = $1 AND id = 'a'`, [P])).rejects.toThrow(
      /position_check/,
    );
  });
});

describe("importPipeline", () => {
  it("creates the pipeline and all nodes, or nothing when one insert fails", async () => {
    const { pipeline, nodes } = await importPipeline(t.pools.editor, {
      pipeline: { id: "imp-1", title: "Imported" },
      nodes: [
        { id: "s", title: "Script", type: "asset", asset: { type: "text", content: "Hi" }, position: { x: 0, y: 0 } },
        { id: "v", title: "Voice", type: "generate-voiceover", inputs: { script: ["s"] }, config: { speed: 1.5 } },
      ],
    });
    expect(pipeline.title).toBe("Imported");
    expect(nodes.map((n) => [n.id, n.status])).toEqual([
      ["s", "pending"],
      ["v", "pending"],
    ]);
    expect((await listNodes(t.pools.reader, "imp-1")).map((n) => n.inputs)).toEqual([{}, { script: ["s"] }]);

    await expect(
      importPipeline(t.pools.editor, {
        pipeline: { id: "imp-2", title: "Half" },
        nodes: [
          { id: "x", title: "X", type: "asset", asset: { type: "video" } },
          { id: "x", title: "X again", type: "asset", asset: { type: "video" } },
        ],
      }),
    ).rejects.toBeInstanceOf(ConflictError);
    expect(await getPipeline(t.pools.reader, "imp-2")).toBeNull();
  });
});

describe("countNodesByStatus", () => {
  it("groups by pipeline and status", async () => {
    const counts = await countNodesByStatus(t.pools.reader, [P, "imp-1", "none"]);
    expect(counts.get(P)).toEqual({ pending: 1, in_progress: 1 });
    expect(counts.get("imp-1")).toEqual({ pending: 2 });
    expect(counts.has("none")).toBe(false);
  });
});
