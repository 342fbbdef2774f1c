import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, insertNodeFixture, insertPipelineFixture, type TestDatabase } from "../../testkit/src/db";
import { evictCacheEntries, keepGarbageKeys, pipelineStorageUsage, unreferencedGarbageKeys } from "./storage-files";

let t: TestDatabase;
const P = "p-files";

beforeAll(async () => {
  t = await createTestDatabase();
  await insertPipelineFixture(t.admin, { id: P });
});
afterAll(async () => {
  await t?.drop();
});

const key = (n: number) => n.toString(16).padStart(64, "0");
const file = (name: string) => `pipelines/${P}/nodes/gone/${name}/output.mp4`;

/** A cache entry (as the state-writer fills it) last used `hoursAgo` hours ago. */
async function entry(n: number, s3Key: string, hoursAgo: number) {
  await t.pools.stateWriter.query(
    `INSERT INTO video_production_cache (cache_key, node_type, output, cost, pipeline_id, node_id) VALUES ($1, 'merge-videos', $2::jsonb, 0, $3, 'gone')`,
    [key(n), JSON.stringify({ type: "video", s3Key }), P],
  );
  await t.admin.query(`UPDATE video_production_cache SET created_at = now() - make_interval(hours => $2) WHERE cache_key = $1`, [key(n), hoursAgo]);
}

const cached = async () => (await t.admin.query(`SELECT cache_key FROM video_production_cache ORDER BY cache_key`)).rows.map((r) => r.cache_key);

describe("cache eviction", () => {
  it("evicts entries unused for the idle time, and past the kept-bytes cap the least recently used entries keeping deleted owners' files", async () => {
    await t.admin.query(`DELETE FROM video_production_cache`);
    await entry(1, file("old"), 48);
    await entry(2, file("a"), 3);
    await entry(3, file("b"), 2);
    await entry(4, file("c"), 1);
    await entry(5, `pipelines/${P}/nodes/live/j-a1/output.mp4`, 5);
    // a, b and c belonged to a deleted node and are kept for the cache: 300 + 200 + 100 bytes.
    await keepGarbageKeys(t.pools.editor, P, [
      { key: file("a"), size: 300 },
      { key: file("b"), size: 200 },
      { key: file("c"), size: 100 },
    ]);

    expect(await evictCacheEntries(t.pools.stateWriter, { idleMs: 24 * 3600_000, maxKeptBytes: 10_000 })).toEqual([file("old")]);
    expect(await cached()).toEqual([key(2), key(3), key(4), key(5)]);

    // 600 kept bytes, a cap of 350: the newest (c, then b) fit, a (least recently used) goes.
    expect(await evictCacheEntries(t.pools.stateWriter, { idleMs: 24 * 3600_000, maxKeptBytes: 350 })).toEqual([file("a")]);
    expect(await cached()).toEqual([key(3), key(4), key(5)]);
    // The file whose entry went is the only one nothing refers to any more.
    expect((await unreferencedGarbageKeys(t.pools.reader)).map((r) => r.s3_key)).toEqual([file("a")]);

    // A cap of 0 keeps nothing only for the cache; an entry whose file's node still exists is not counted.
    await evictCacheEntries(t.pools.stateWriter, { idleMs: 24 * 3600_000, maxKeptBytes: 0 });
    expect(await cached()).toEqual([key(5)]);
  });

  it("the editor and reader roles cannot evict", async () => {
    await expect(evictCacheEntries(t.pools.editor, { idleMs: 0, maxKeptBytes: 0 })).rejects.toThrow(/permission denied/);
    await expect(evictCacheEntries(t.pools.reader, { idleMs: 0, maxKeptBytes: 0 })).rejects.toThrow(/permission denied/);
  });
});

describe("pipeline storage use", () => {
  it("counts every file the pipeline's rows refer to once, plus files kept after a delete, and nothing of other pipelines", async () => {
    const Q = (await insertPipelineFixture(t.admin)).id;
    const upload = `pipelines/${Q}/nodes/clip/asset/u.mp4`;
    // An uploaded asset whose output is the upload itself: counted once.
    await insertNodeFixture(t.admin, {
      pipelineId: Q,
      id: "clip",
      type: "asset",
      status: "completed",
      asset: { type: "video", source: upload, size: 1000 },
      output: { type: "video", s3Key: upload, size: 1000 },
    });
    await insertNodeFixture(t.admin, {
      pipelineId: Q,
      id: "merge",
      type: "merge-videos",
      status: "completed",
      output: { type: "video", s3Key: `pipelines/${Q}/nodes/merge/j-a1/output.mp4`, size: 500 },
    });
    // A result taken from the cache, stored under another pipeline: still this pipeline's to hold.
    await insertNodeFixture(t.admin, {
      pipelineId: Q,
      id: "cached",
      type: "merge-videos",
      status: "completed",
      output: { type: "video", s3Key: `pipelines/${P}/nodes/x/j-a1/output.mp4`, size: 70 },
    });
    await insertNodeFixture(t.admin, { pipelineId: Q, id: "text", type: "asset", asset: { type: "text", content: "inline" } });
    await keepGarbageKeys(t.pools.editor, Q, [{ key: `pipelines/${Q}/nodes/deleted/j-a1/output.mp4`, size: 5 }]);
    expect(await pipelineStorageUsage(t.pools.reader, Q)).toBe(1575);
    // An earlier run's result the node no longer shows, still in the cache; and the current one, counted once.
    for (const [n, name, bytes] of [
      [90, "j0-a1", 400],
      [91, "j-a1", 500],
    ] as const) {
      await t.pools.stateWriter.query(
        `INSERT INTO video_production_cache (cache_key, node_type, output, cost, pipeline_id, node_id) VALUES ($1, 'merge-videos', $2::jsonb, 0, $3, 'merge')`,
        [key(n), JSON.stringify({ type: "video", s3Key: `pipelines/${Q}/nodes/merge/${name}/output.mp4`, size: bytes }), Q],
      );
    }
    expect(await pipelineStorageUsage(t.pools.reader, Q)).toBe(1975);
    expect(await pipelineStorageUsage(t.pools.reader, "no-such-pipeline")).toBe(0);
  });
});
