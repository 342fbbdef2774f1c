import type { Queryable } from "./connection";

/**
 * Stored files and who refers to them: the garbage a deleted pipeline or node leaves (see the storage_garbage
 * migration), the references that keep a file alive (a cache entry's output, a node's output or uploaded asset),
 * a pipeline's storage use for its quota, and cache eviction. Editor role: garbage rows; state-writer: eviction;
 * any role: the reads.
 */

/** Everything stored for a pipeline (the storage package's pipelinePrefix, which db does not import). */
export const pipelineFilesPrefix = (pipelineId: string) => `pipelines/${pipelineId}/`;
/** Everything stored for one node. */
export const nodeFilesPrefix = (pipelineId: string, nodeId: string) => `pipelines/${pipelineId}/nodes/${nodeId}/`;

export interface GarbageRow {
  /** A prefix ending in '/' (delete what nothing refers to) or one kept key (delete once nothing refers to it). */
  s3_key: string;
  pipeline_id: string;
  bytes: number;
  created_at: Date;
  /** created_at to the microsecond (a Date keeps milliseconds): what forgetGarbage compares. */
  stamp: string;
}

/**
 * Records a prefix to delete, inside the transaction that deletes its rows (editor role): the files go after the
 * commit, and a crash in between leaves the row for the next pass. Recorded again, the row's time moves on.
 */
export async function recordGarbagePrefix(tx: Queryable, prefix: string, pipelineId: string): Promise<void> {
  await tx.query(
    `INSERT INTO video_production_storage_garbage (s3_key, pipeline_id, created_at) VALUES ($1, $2, clock_timestamp())
     ON CONFLICT (s3_key) DO UPDATE SET created_at = clock_timestamp()`,
    [prefix, pipelineId],
  );
}

/** Prefix rows still to process (oldest first); `only` picks one prefix (the delete that just committed). */
export async function listGarbagePrefixes(db: Queryable, options: { only?: string; limit?: number } = {}): Promise<GarbageRow[]> {
  const { rows } = await db.query<GarbageRow & { bytes: string }>(
    `SELECT s3_key, pipeline_id, bytes, created_at, created_at::text AS stamp FROM video_production_storage_garbage
     WHERE right(s3_key, 1) = '/' AND ($1::varchar IS NULL OR s3_key = $1)
     ORDER BY created_at LIMIT $2`,
    [options.only ?? null, options.limit ?? 100],
  );
  return rows.map((r) => ({ ...r, bytes: Number(r.bytes) }));
}

/** Keys under `prefix` that a cache entry or any node (of any pipeline) still refers to. */
export async function referencedKeysUnder(db: Queryable, prefix: string): Promise<Set<string>> {
  const { rows } = await db.query<{ key: string }>(
    `SELECT output ->> 's3Key' AS key FROM video_production_cache WHERE starts_with(output ->> 's3Key', $1)
     UNION SELECT output ->> 's3Key' FROM video_production_nodes WHERE starts_with(output ->> 's3Key', $1)
     UNION SELECT asset ->> 'source' FROM video_production_nodes WHERE starts_with(asset ->> 'source', $1)`,
    [prefix],
  );
  return new Set(rows.map((r) => r.key));
}

/** Files kept past their owner's deletion (editor role); each counts towards its pipeline's quota until collected. */
export async function keepGarbageKeys(tx: Queryable, pipelineId: string, kept: ReadonlyArray<{ key: string; size: number }>): Promise<void> {
  if (!kept.length) return;
  await tx.query(
    `INSERT INTO video_production_storage_garbage (s3_key, pipeline_id, bytes)
     SELECT k, $1, b FROM unnest($2::varchar[], $3::bigint[]) AS t(k, b)
     ON CONFLICT (s3_key) DO UPDATE SET bytes = EXCLUDED.bytes`,
    [pipelineId, kept.map((k) => k.key), kept.map((k) => k.size)],
  );
}

/** Forgets a processed row, unless it was recorded again meanwhile (its time moved on: another delete to do). */
export async function forgetGarbage(db: Queryable, row: Pick<GarbageRow, "s3_key" | "stamp">): Promise<void> {
  await db.query(`DELETE FROM video_production_storage_garbage WHERE s3_key = $1 AND created_at = $2::timestamptz`, [row.s3_key, row.stamp]);
}

/** Kept keys nothing refers to any more (their cache entries evicted, their nodes gone): ready to delete. */
export async function unreferencedGarbageKeys(db: Queryable, limit = 500): Promise<GarbageRow[]> {
  const { rows } = await db.query<GarbageRow & { bytes: string }>(
    `SELECT g.s3_key, g.pipeline_id, g.bytes, g.created_at, g.created_at::text AS stamp FROM video_production_storage_garbage g
     WHERE right(g.s3_key, 1) <> '/'
       AND NOT EXISTS (SELECT 1 FROM video_production_cache c WHERE c.output ->> 's3Key' = g.s3_key)
       AND NOT EXISTS (SELECT 1 FROM video_production_nodes n WHERE n.output ->> 's3Key' = g.s3_key)
       AND NOT EXISTS (SELECT 1 FROM video_production_nodes n WHERE n.asset ->> 'source' = g.s3_key)
     ORDER BY g.created_at LIMIT $1`,
    [limit],
  );
  return rows.map((r) => ({ ...r, bytes: Number(r.bytes) }));
}

/** A JSONB size field as a number (0 when absent or not a number). */
const size = (expr: string) => `CASE WHEN jsonb_typeof(${expr}) = 'number' THEN (${expr})::numeric ELSE 0 END`;

/**
 * Bytes a pipeline holds in storage, from its rows (no listing): every distinct file its nodes refer to (uploaded
 * assets, outputs, including a cached output made elsewhere), the results it put in the cache (an earlier run's
 * output the node no longer shows), and the files kept past a deleted node's deletion. Outputs of superseded
 * attempts are not counted (no row refers to them).
 */
export async function pipelineStorageUsage(db: Queryable, pipelineId: string): Promise<number> {
  const { rows } = await db.query<{ bytes: string }>(
    `WITH refs AS (
       SELECT asset ->> 'source' AS key, ${size("asset -> 'size'")} AS bytes FROM video_production_nodes
         WHERE pipeline_id = $1 AND asset ->> 'source' IS NOT NULL
       UNION ALL
       SELECT output ->> 's3Key', ${size("output -> 'size'")} FROM video_production_nodes
         WHERE pipeline_id = $1 AND output ->> 's3Key' IS NOT NULL
       UNION ALL
       SELECT s3_key, bytes FROM video_production_storage_garbage WHERE pipeline_id = $1 AND right(s3_key, 1) <> '/'
       UNION ALL
       SELECT output ->> 's3Key', ${size("output -> 'size'")} FROM video_production_cache WHERE pipeline_id = $1
     )
     SELECT COALESCE(sum(bytes), 0)::text AS bytes FROM (SELECT key, max(bytes) AS bytes FROM refs GROUP BY key) per_key`,
    [pipelineId],
  );
  return Number(rows[0]?.bytes ?? 0);
}

export interface CacheEvictionPolicy {
  /** Entries neither made nor hit for this long are evicted. */
  idleMs: number;
  /**
   * Most bytes of files kept only for the cache after their pipeline or node was deleted; past it the least
   * recently used such entries are evicted first.
   */
  maxKeptBytes: number;
}

/** Evicts cache entries by the policy (state-writer role); returns the evicted keys' stored files. */
export async function evictCacheEntries(db: Queryable, policy: CacheEvictionPolicy): Promise<string[]> {
  const { rows } = await db.query<{ s3_key: string }>(
    `WITH kept AS (
       SELECT c.cache_key, g.bytes, COALESCE(c.last_hit_at, c.created_at) AS used_at
       FROM video_production_cache c JOIN video_production_storage_garbage g ON g.s3_key = c.output ->> 's3Key'
     ), ranked AS (
       SELECT cache_key, sum(bytes) OVER (ORDER BY used_at DESC, cache_key) AS running FROM kept
     )
     DELETE FROM video_production_cache c
     WHERE COALESCE(c.last_hit_at, c.created_at) < clock_timestamp() - make_interval(secs => $1::float8 / 1000)
        OR c.cache_key IN (SELECT cache_key FROM ranked WHERE running > $2::bigint)
     RETURNING c.output ->> 's3Key' AS s3_key`,
    [policy.idleMs, policy.maxKeptBytes],
  );
  return rows.map((r) => r.s3_key);
}
