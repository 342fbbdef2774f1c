import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, insertPipelineFixture, type TestDatabase } from "../../testkit/src/db";
import { createNode, createPipeline, importPipeline, updateNodeStructure } from "./editor";
import { PipelineLimitError } from "./errors";
import { listNodes } from "./reader";

let t: TestDatabase;

beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => {
  await t?.drop();
});

const text = (id: string, content: string) => ({ id, title: id, type: "asset" as const, asset: { type: "text", content } });

describe("pipeline limits, enforced by the write itself", () => {
  it("two concurrent node inserts at the node limit: exactly one gets in", async () => {
    const limits = { maxNodes: 3, maxStructureBytes: 1024 * 1024 };
    for (let round = 0; round < 10; round++) {
      const P = `p-race-${round}`;
      await insertPipelineFixture(t.admin, { id: P });
      for (const id of ["a", "b"]) await createNode(t.pools.editor, { pipelineId: P, ...text(id, "x") }, limits);
      const results = await Promise.allSettled(["c", "d"].map((id) => createNode(t.pools.editor, { pipelineId: P, ...text(id, "x") }, limits)));
      expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
      const refused = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
      expect(refused.reason).toBeInstanceOf(PipelineLimitError);
      expect(refused.reason).toMatchObject({ limit: "nodes", max: 3, actual: 4, message: "A pipeline has at most 3 nodes; this write would make it 4" });
      expect(await listNodes(t.admin, P)).toHaveLength(3);
    }
  });

  it("two concurrent edits that each fit but together pass the structure limit: exactly one gets in", async () => {
    const limits = { maxNodes: 10, maxStructureBytes: 10_000 };
    const P = "p-bytes";
    await insertPipelineFixture(t.admin, { id: P });
    for (const id of ["a", "b"]) await createNode(t.pools.editor, { pipelineId: P, ...text(id, "x") }, limits);
    const results = await Promise.allSettled(
      ["a", "b"].map((id) => updateNodeStructure(t.pools.editor, P, id, { assetPatch: { content: "y".repeat(6000) } }, limits)),
    );
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    const refused = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
    expect(refused.reason).toMatchObject({ name: "PipelineLimitError", limit: "structureBytes", max: 10_000 });
    expect(refused.reason.message).toMatch(
      /^A pipeline's structure \(titles, inputs, config and assets of its nodes\) is at most 10000 bytes; this write would make it 12\d{3} bytes$/,
    );
    const contents = (await listNodes(t.admin, P)).map((n) => (n.asset as { content: string }).content.length).sort();
    expect(contents).toEqual([1, 6000]);
    // A move changes no structure: it goes through at the limit.
    expect(await updateNodeStructure(t.pools.editor, P, "a", { position: { x: 1, y: 2 } }, { ...limits, maxStructureBytes: 1 })).not.toBeNull();
  });

  it("an import past a limit creates nothing", async () => {
    const limits = { maxNodes: 2, maxStructureBytes: 1024 * 1024 };
    const nodes = ["a", "b", "c"].map((id) => text(id, "x"));
    await expect(importPipeline(t.pools.editor, { pipeline: { id: "p-import", title: "I" }, nodes }, limits)).rejects.toMatchObject({
      limit: "nodes",
      actual: 3,
    });
    await expect(
      importPipeline(
        t.pools.editor,
        { pipeline: { id: "p-import", title: "I" }, nodes: [text("a", "z".repeat(2000))] },
        { maxNodes: 5, maxStructureBytes: 1000 },
      ),
    ).rejects.toMatchObject({
      limit: "structureBytes",
    });
    const { rows } = await t.admin.query("SELECT id FROM video_production_pipelines WHERE id = 'p-import'");
    expect(rows).toEqual([]);
    await createPipeline(t.pools.editor, { id: "p-import", title: "I" });
  });
});
