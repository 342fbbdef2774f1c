import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, insertNodeFixture, insertPipelineFixture, type TestDatabase } from "../../testkit/src/db";
import { DEFAULT_DATABASE_URL, roleUrl } from "./connection";
import { createNode, createPipeline, deleteNode, deletePipeline, updateNodeStructure, updatePipeline } from "./editor";
import { ConflictError, NotFoundError, ValidationError } from "./errors";
import { findDependants, getNode, getNodes, getPipeline, getPipelineRow, listNodes, listPipelines } from "./reader";
import { toSerializedNode } from "./rows";

let t: TestDatabase;
const ISO_Z = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => {
  await t?.drop();
});

describe("roleUrl", () => {
  it("replaces the user and takes the password from VP_<ROLE>_PASSWORD", () => {
    expect(roleUrl(DEFAULT_DATABASE_URL, "vp_reader", {})).toBe("postgres://vp_reader@127.0.0.1:5432/video_production");
    expect(roleUrl("postgres://admin:secret@db:5432/vp?sslmode=require", "vp_state_writer", { VP_STATE_WRITER_PASSWORD: "p@ss w" })).toBe(
      "postgres://vp_state_writer:p%40ss%20w@db:5432/vp?sslmode=require",
    );
  });
});

describe("editor and reader queries", () => {
  it("creates, lists (newest first, paginated) and shows pipelines", async () => {
    const ed = t.pools.editor;
    await createPipeline(ed, { id: "lp-1", title: "One" });
    await createPipeline(ed, { id: "lp-2", title: "Two", config: { workingDirectory: "./out" } });
    await createPipeline(ed, { id: "lp-3", title: "Three" });
    await expect(createPipeline(ed, { id: "lp-1", title: "Dup" })).rejects.toBeInstanceOf(ConflictError);
    await updatePipeline(ed, "lp-1", { title: "One!", configPatch: { storage: { bucket: "b" } } });

    const page1 = await listPipelines(t.pools.reader, { page: 1, per: 2 });
    expect(page1.totalCount).toBe(3);
    expect(page1.pipelines.map((p) => p.id)).toEqual(["lp-1", "lp-3"]);
    const page2 = await listPipelines(t.pools.reader, { page: 2, per: 2 });
    expect(page2.pipelines.map((p) => p.id)).toEqual(["lp-2"]);
    expect((await listPipelines(t.pools.reader, { page: 5, per: 2 })).pipelines).toEqual([]);

    const one = page1.pipelines[0]!;
    expect(one).toMatchObject({ title: "One!", version: "1.0", config: { storage: { bucket: "b" } }, metadata: {} });
    expect(one.created_at).toMatch(ISO_Z);
    expect(one.updated_at).toMatch(ISO_Z);
    expect(one).not.toHaveProperty("nodes");

    expect(await updatePipeline(ed, "missing", { title: "x" })).toBeNull();
    expect(await getPipeline(t.pools.reader, "missing")).toBeNull();
    for (const id of ["lp-1", "lp-2", "lp-3"]) expect(await deletePipeline(ed, id)).toBe(true);
    expect(await deletePipeline(ed, "lp-1")).toBe(false);
  });

  it("creates nodes pending, bumps the pipeline, maps errors to typed errors", async () => {
    const ed = t.pools.editor;
    const past = new Date("2020-01-01T00:00:00Z");
    await insertPipelineFixture(t.admin, { id: "np", updated_at: past });
    const a = await createNode(ed, { pipelineId: "np", id: "a", title: "A", type: "asset", asset: { source: "x.mp4", type: "video" } });
    expect(a).toMatchObject({ status: "pending", metadata: null, output: null, inputs: {}, config: {}, state_version: 0 });
    expect((await getPipelineRow(t.admin, "np"))!.updated_at.getTime()).toBeGreaterThan(past.getTime());

    await expect(createNode(ed, { pipelineId: "np", id: "a", title: "A", type: "asset" })).rejects.toBeInstanceOf(ConflictError);
    await expect(createNode(ed, { pipelineId: "nope", id: "a", title: "A", type: "asset" })).rejects.toBeInstanceOf(NotFoundError);
    // Which types exist is the node-type catalog's to say (the gateway checks it); the database refuses a malformed one.
    await expect(createNode(ed, { pipelineId: "np", id: "bad", title: "B", type: "Teleport now!" as never })).rejects.toBeInstanceOf(ValidationError);
    // The same id in another pipeline is fine: the key is (pipeline_id, id).
    await insertPipelineFixture(t.admin, { id: "np2" });
    await createNode(ed, { pipelineId: "np2", id: "a", title: "A", type: "asset" });

    const ser = toSerializedNode(a);
    expect(Object.keys(ser).sort()).toEqual(
      ["asset", "config", "disabled", "id", "inputs", "metadata", "output", "pipeline_id", "position", "revision", "status", "title", "type"].sort(),
    );
  });

  it("updates structure partially and never touches execution state", async () => {
    const P = "up";
    await insertPipelineFixture(t.admin, { id: P });
    await insertNodeFixture(t.admin, {
      pipelineId: P,
      id: "m",
      type: "merge-videos",
      inputs: { segments: ["a", "b"] },
      config: { provider: "ffmpeg", keep: true, drop: 1 },
      status: "in_progress",
      metadata: { jobId: "j" },
    });
    const r = await updateNodeStructure(t.pools.editor, P, "m", {
      title: "Merged",
      inputsPatch: { segments: ["b", "a", "c"] },
      configPatch: { crf: 20 },
      configRemove: ["drop"],
      assetPatch: { note: "x" },
    });
    expect(r).toMatchObject({
      title: "Merged",
      type: "merge-videos",
      inputs: { segments: ["b", "a", "c"] },
      config: { provider: "ffmpeg", keep: true, crf: 20 },
      asset: { note: "x" },
      status: "in_progress",
      metadata: { jobId: "j" },
      state_version: 0,
    });
    expect(r!.config).not.toHaveProperty("drop");
    const r2 = await updateNodeStructure(t.pools.editor, P, "m", { type: "compose-video", inputsRemove: ["segments"] });
    expect(r2).toMatchObject({ type: "compose-video", inputs: {}, title: "Merged", asset: { note: "x" } });
    expect(await updateNodeStructure(t.pools.editor, P, "missing", { title: "x" })).toBeNull();
    expect(await updateNodeStructure(t.pools.editor, "missing", "m", { title: "x" })).toBeNull();
    await expect(updateNodeStructure(t.pools.editor, P, "m", { type: "No such type" as never })).rejects.toBeInstanceOf(ValidationError);
  });

  it("reads nodes in creation order, by ids, and finds dependants", async () => {
    const P = "rd";
    await insertPipelineFixture(t.admin, { id: P });
    await insertNodeFixture(t.admin, { pipelineId: P, id: "s1", traits: ["completed"] });
    await insertNodeFixture(t.admin, { pipelineId: P, id: "s2", completed: true });
    await insertNodeFixture(t.admin, { pipelineId: P, id: "merge", type: "merge-videos", inputs: { segments: ["s1", "s2"] } });
    await insertNodeFixture(t.admin, { pipelineId: P, id: "mix", type: "mix-audio", inputs: { video: ["merge"], audio: ["s2"] } });
    await insertNodeFixture(t.admin, { pipelineId: P, id: "other", inputs: {} });

    const rd = t.pools.reader;
    expect((await listNodes(rd, P)).map((n) => n.id)).toEqual(["s1", "s2", "merge", "mix", "other"]);
    expect((await getNodes(rd, P, ["mix", "s1", "nope"])).map((n) => n.id)).toEqual(["s1", "mix"]);
    expect(await getNodes(rd, P, [])).toEqual([]);
    expect(await findDependants(rd, P, "s2")).toEqual(["merge", "mix"]);
    expect(await findDependants(rd, P, "merge")).toEqual(["mix"]);
    expect(await findDependants(rd, P, "mix")).toEqual([]);

    const s1 = await getNode(rd, P, "s1");
    expect(s1).toMatchObject({
      status: "completed",
      metadata: { cost: 0.05 },
      output: { type: "video", s3Key: "output/test.mp4", duration: 60, size: 5242880 },
    });
    expect(await getNode(rd, P, "nope")).toBeNull();

    const shown = await getPipeline(rd, P, { withNodes: true });
    expect(shown?.nodes?.map((n) => n.id)).toEqual(["s1", "s2", "merge", "mix", "other"]);
    expect(shown?.nodes?.[0]).not.toHaveProperty("state_version");

    // The delete is the pipeline's next revision.
    expect(await deleteNode(t.pools.editor, P, "other")).toBeGreaterThan(0);
    expect(await deleteNode(t.pools.editor, P, "other")).toBe(false);
    expect(await deletePipeline(t.pools.editor, P)).toBe(true);
    expect(await listNodes(rd, P)).toEqual([]);
  });
});
