import type { Queryable } from "./connection";

/**
 * API keys (video_production_api_keys): created, checked, revoked and touched by the gateway as the editor role,
 * the only role that may read the table. The secret's hash is read by `getApiKeyForCheck` only; every other query
 * leaves it out, so it cannot reach an answer by accident.
 */

/** An API key as the API shows it: never its secret or hash. */
export interface ApiKey {
  id: string;
  name: string;
  roles: string[];
  /** The only pipelines the key may use; null: every pipeline. */
  pipelines: string[] | null;
  created_by: string;
  created_at: string;
  revoked_at: string | null;
  last_used_at: string | null;
}

interface ApiKeyRow {
  id: string;
  name: string;
  roles: string[];
  pipeline_ids: string[] | null;
  created_by: string;
  created_at: Date;
  revoked_at: Date | null;
  last_used_at: Date | null;
}

const COLUMNS = "id, name, roles, pipeline_ids, created_by, created_at, revoked_at, last_used_at";

const isoOrNull = (value: Date | null) => (value ? value.toISOString() : null);

function toApiKey(row: ApiKeyRow): ApiKey {
  return {
    id: row.id,
    name: row.name,
    roles: row.roles,
    pipelines: row.pipeline_ids,
    created_by: row.created_by,
    created_at: row.created_at.toISOString(),
    revoked_at: isoOrNull(row.revoked_at),
    last_used_at: isoOrNull(row.last_used_at),
  };
}

export interface NewApiKeyRow {
  id: string;
  name: string;
  roles: readonly string[];
  /** null: every pipeline. */
  pipelineIds: readonly string[] | null;
  /** SHA-256 of the secret (32 bytes). */
  secretHash: Uint8Array;
  createdBy: string;
}

/** Stores a new key (editor role). */
export async function createApiKey(db: Queryable, key: NewApiKeyRow): Promise<ApiKey> {
  const { rows } = await db.query<ApiKeyRow>(
    `INSERT INTO video_production_api_keys (id, name, roles, pipeline_ids, secret_hash, created_by)
     VALUES ($1, $2, $3::varchar[], $4::varchar[], $5, $6) RETURNING ${COLUMNS}`,
    [key.id, key.name, key.roles, key.pipelineIds, Buffer.from(key.secretHash), key.createdBy],
  );
  return toApiKey(rows[0]!);
}

/** Every key, revoked ones included, newest first. */
export async function listApiKeys(db: Queryable): Promise<ApiKey[]> {
  const { rows } = await db.query<ApiKeyRow>(`SELECT ${COLUMNS} FROM video_production_api_keys ORDER BY created_at DESC, id`);
  return rows.map(toApiKey);
}

/** A key with its secret's hash, to check a presented key against; null when no key has this id. */
export async function getApiKeyForCheck(db: Queryable, id: string): Promise<(ApiKey & { secretHash: Buffer }) | null> {
  const { rows } = await db.query<ApiKeyRow & { secret_hash: Buffer }>(`SELECT ${COLUMNS}, secret_hash FROM video_production_api_keys WHERE id = $1`, [id]);
  const row = rows[0];
  return row ? { ...toApiKey(row), secretHash: row.secret_hash } : null;
}

/** Revokes a key; revoking a revoked key keeps its first revocation time. Null when no key has this id. */
export async function revokeApiKey(db: Queryable, id: string): Promise<ApiKey | null> {
  const { rows } = await db.query<ApiKeyRow>(
    `UPDATE video_production_api_keys SET revoked_at = COALESCE(revoked_at, clock_timestamp()) WHERE id = $1 RETURNING ${COLUMNS}`,
    [id],
  );
  return rows[0] ? toApiKey(rows[0]) : null;
}

/**
 * Records a use of a key unless one was recorded within `minIntervalSeconds` (by the database clock, so several
 * gateways share the rule). True when it wrote.
 */
export async function touchApiKey(db: Queryable, id: string, minIntervalSeconds = 60): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE video_production_api_keys SET last_used_at = clock_timestamp()
     WHERE id = $1 AND revoked_at IS NULL AND (last_used_at IS NULL OR last_used_at <= clock_timestamp() - make_interval(secs => $2))`,
    [id, minIntervalSeconds],
  );
  return rowCount === 1;
}

/** Those of `ids` that name no pipeline. */
export async function missingPipelineIds(db: Queryable, ids: readonly string[]): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `SELECT id FROM unnest($1::varchar[]) AS t(id) WHERE NOT EXISTS (SELECT 1 FROM video_production_pipelines p WHERE p.id = t.id)`,
    [ids],
  );
  return rows.map((r) => r.id);
}
