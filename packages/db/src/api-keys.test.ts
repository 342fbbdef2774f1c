import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, insertPipelineFixture, type TestDatabase } from "../../testkit/src/db";
import { createApiKey, getApiKeyForCheck, listApiKeys, missingPipelineIds, revokeApiKey, touchApiKey } from "./api-keys";
import { listPipelines } from "./reader";

let t: TestDatabase;
const HASH = Buffer.alloc(32, 7);

beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => {
  await t?.drop();
});

const newKey = (id: string, over: { pipelineIds?: string[] | null } = {}) =>
  createApiKey(t.pools.editor, {
    id,
    name: "CI deploy",
    roles: ["viewer", "editor"],
    pipelineIds: over.pipelineIds ?? null,
    secretHash: HASH,
    createdBy: "dev",
  });

describe("API key queries (editor role)", () => {
  it("create and list answer no hash; the check reads it", async () => {
    const key = await newKey("1000000000000001", { pipelineIds: ["p-a"] });
    expect(key).toEqual({
      id: "1000000000000001",
      name: "CI deploy",
      roles: ["viewer", "editor"],
      pipelines: ["p-a"],
      created_by: "dev",
      created_at: expect.stringMatching(/Z$/),
      revoked_at: null,
      last_used_at: null,
    });
    const listed = (await listApiKeys(t.pools.editor)).find((k) => k.id === key.id);
    expect(listed).toEqual(key);
    expect(JSON.stringify(await listApiKeys(t.pools.editor))).not.toMatch(/hash/);
    const checked = await getApiKeyForCheck(t.pools.editor, key.id);
    expect(checked?.secretHash.equals(HASH)).toBe(true);
    expect(await getApiKeyForCheck(t.pools.editor, "ffffffffffffffff")).toBeNull();
  });

  it("revoking twice keeps the first time; an unknown id is null", async () => {
    const key = await newKey("1000000000000002");
    const first = await revokeApiKey(t.pools.editor, key.id);
    expect(first?.revoked_at).toMatch(/Z$/);
    expect((await revokeApiKey(t.pools.editor, key.id))?.revoked_at).toBe(first?.revoked_at);
    expect(await revokeApiKey(t.pools.editor, "ffffffffffffffff")).toBeNull();
  });

  it("records a use at most once per interval, and none for a revoked key", async () => {
    const key = await newKey("1000000000000003");
    expect(await touchApiKey(t.pools.editor, key.id, 60)).toBe(true);
    const used = (await getApiKeyForCheck(t.pools.editor, key.id))?.last_used_at;
    expect(used).toMatch(/Z$/);
    expect(await touchApiKey(t.pools.editor, key.id, 60)).toBe(false);
    expect((await getApiKeyForCheck(t.pools.editor, key.id))?.last_used_at).toBe(used);
    expect(await touchApiKey(t.pools.editor, key.id, 0)).toBe(true);
    await revokeApiKey(t.pools.editor, key.id);
    expect(await touchApiKey(t.pools.editor, key.id, 0)).toBe(false);
  });

  it("names the pipeline ids that do not exist; lists only the pipelines asked for", async () => {
    const a = await insertPipelineFixture(t.admin, { id: "p-keys-a" });
    const b = await insertPipelineFixture(t.admin, { id: "p-keys-b" });
    expect(await missingPipelineIds(t.pools.reader, [a.id, "p-nope", b.id])).toEqual(["p-nope"]);
    const only = await listPipelines(t.pools.reader, { ids: [a.id] });
    expect(only.pipelines.map((p) => p.id)).toEqual([a.id]);
    expect(only.totalCount).toBe(1);
    expect((await listPipelines(t.pools.reader, { ids: [] })).totalCount).toBe(0);
    expect((await listPipelines(t.pools.reader)).totalCount).toBeGreaterThanOrEqual(2);
  });
});
