import type { SerializedPipeline, Variable } from "@vp/contracts";
import type { Queryable } from "./connection";
import { NODE_COLUMNS, PIPELINE_COLUMNS, toSerializedPipeline, type NodeRow, type PipelineRow } from "./rows";

/** Reader queries: plain SELECTs, fine for every role. */

export interface ListPipelinesOptions {
  /** 1-based. */
  page?: number;
  per?: number;
  /** Only these pipelines (a caller limited to them); absent: all. */
  ids?: Iterable<string>;
  /** Include the pipelines batches made for their rows (left out by default). */
  batchRows?: boolean;
}

export async function listPipelines(
  db: Queryable,
  { page = 1, per = 25, ids, batchRows = false }: ListPipelinesOptions = {},
): Promise<{ pipelines: SerializedPipeline[]; totalCount: number }> {
  const limit = Math.max(1, Math.floor(per));
  const offset = (Math.max(1, Math.floor(page)) - 1) * limit;
  const only = ids === undefined ? null : [...ids];
  const where = `WHERE ($1::varchar[] IS NULL OR id = ANY($1::varchar[]))${batchRows ? "" : " AND batch_id IS NULL"}`;
  const [rows, count] = await Promise.all([
    db.query<PipelineRow>(`SELECT ${PIPELINE_COLUMNS} FROM video_production_pipelines ${where} ORDER BY updated_at DESC, id LIMIT $2 OFFSET $3`, [
      only,
      limit,
      offset,
    ]),
    db.query<{ n: string }>(`SELECT count(*) AS n FROM video_production_pipelines ${where}`, [only]),
  ]);
  return { pipelines: rows.rows.map((r) => toSerializedPipeline(r)), totalCount: Number(count.rows[0]?.n ?? 0) };
}

export async function getPipelineRow(db: Queryable, id: string): Promise<PipelineRow | null> {
  const { rows } = await db.query<PipelineRow>(`SELECT ${PIPELINE_COLUMNS} FROM video_production_pipelines WHERE id = $1`, [id]);
  return rows[0] ?? null;
}

/** The pipeline's declared variables; null when the pipeline does not exist. */
export async function getPipelineVariables(db: Queryable, id: string): Promise<Variable[] | null> {
  const { rows } = await db.query<{ variables: Variable[] }>(`SELECT variables FROM video_production_pipelines WHERE id = $1`, [id]);
  return rows[0] ? (rows[0].variables ?? []) : null;
}

/** The serialized pipeline, with its nodes when `withNodes` (the show endpoint). */
export async function getPipeline(db: Queryable, id: string, opts: { withNodes?: boolean } = {}): Promise<SerializedPipeline | null> {
  const row = await getPipelineRow(db, id);
  if (!row) return null;
  return toSerializedPipeline(row, opts.withNodes ? await listNodes(db, id) : undefined);
}

export async function listNodes(db: Queryable, pipelineId: string): Promise<NodeRow[]> {
  const { rows } = await db.query<NodeRow>(`SELECT ${NODE_COLUMNS} FROM video_production_nodes WHERE pipeline_id = $1 ORDER BY created_at, id`, [pipelineId]);
  return rows;
}

export async function getNode(db: Queryable, pipelineId: string, nodeId: string): Promise<NodeRow | null> {
  const { rows } = await db.query<NodeRow>(`SELECT ${NODE_COLUMNS} FROM video_production_nodes WHERE pipeline_id = $1 AND id = $2`, [pipelineId, nodeId]);
  return rows[0] ?? null;
}

/** The nodes with these ids (missing ones are simply absent), ordered by created_at, id. */
export async function getNodes(db: Queryable, pipelineId: string, ids: readonly string[]): Promise<NodeRow[]> {
  if (ids.length === 0) return [];
  const { rows } = await db.query<NodeRow>(
    `SELECT ${NODE_COLUMNS} FROM video_production_nodes WHERE pipeline_id = $1 AND id = ANY($2::varchar[])
     ORDER BY created_at, id`,
    [pipelineId, [...ids]],
  );
  return rows;
}

/** Ids of the nodes of the pipeline whose inputs (any slot) name `nodeId`, ordered by created_at, id. */
export async function findDependants(db: Queryable, pipelineId: string, nodeId: string): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `SELECT id FROM video_production_nodes
     WHERE pipeline_id = $1
       AND jsonb_path_exists(inputs, '$.*[*] ? (@ == $id)', jsonb_build_object('id', $2::text))
     ORDER BY created_at, id`,
    [pipelineId, nodeId],
  );
  return rows.map((r) => r.id);
}

/** Per pipeline: how many nodes it has in each status, for the pipeline list (one grouped query). */
export async function countNodesByStatus(db: Queryable, pipelineIds: readonly string[]): Promise<Map<string, Record<string, number>>> {
  const counts = new Map<string, Record<string, number>>();
  if (pipelineIds.length === 0) return counts;
  const { rows } = await db.query<{ pipeline_id: string; status: string; n: string }>(
    `SELECT pipeline_id, status, count(*) AS n FROM video_production_nodes
     WHERE pipeline_id = ANY($1::varchar[]) GROUP BY pipeline_id, status`,
    [[...pipelineIds]],
  );
  for (const row of rows) {
    const entry = counts.get(row.pipeline_id) ?? {};
    entry[row.status] = Number(row.n);
    counts.set(row.pipeline_id, entry);
  }
  return counts;
}

/**
 * Nodes in_progress whose executor stopped heart-beating more than `stalledAfterMs` ago (or never did):
 * the reconciler's candidates for revival. Oldest first.
 */
export async function findStalledNodes(db: Queryable, { stalledAfterMs, limit = 100 }: { stalledAfterMs: number; limit?: number }): Promise<NodeRow[]> {
  const { rows } = await db.query<NodeRow>(
    `SELECT ${NODE_COLUMNS} FROM video_production_nodes
     WHERE status = 'in_progress'
       AND COALESCE((metadata ->> 'heartbeatAt')::timestamptz, (metadata ->> 'startedAt')::timestamptz, 'epoch')
           < now() - make_interval(secs => $1::float8 / 1000)
     ORDER BY COALESCE((metadata ->> 'heartbeatAt')::timestamptz, 'epoch')
     LIMIT $2`,
    [stalledAfterMs, limit],
  );
  return rows;
}

/**
 * Nodes queued (claimed for a job, not yet started by an executor) for longer than `queuedForMs`, oldest first:
 * the reconciler checks whether their job message still exists.
 */
export async function findLongQueuedNodes(db: Queryable, { queuedForMs, limit = 100 }: { queuedForMs: number; limit?: number }): Promise<NodeRow[]> {
  const { rows } = await db.query<NodeRow>(
    `SELECT ${NODE_COLUMNS} FROM video_production_nodes
     WHERE status = 'queued'
       AND COALESCE((metadata ->> 'queuedAt')::timestamptz, 'epoch') < now() - make_interval(secs => $1::float8 / 1000)
     ORDER BY COALESCE((metadata ->> 'queuedAt')::timestamptz, 'epoch')
     LIMIT $2`,
    [queuedForMs, limit],
  );
  return rows;
}
