import type { Queryable } from "./connection";

/** A pipeline run (video_production_runs). */
export interface RunRow {
  id: string;
  pipeline_id: string;
  kind: RunKind;
  target_node_id: string | null;
  node_ids: string[];
  status: RunStatus;
  metadata: Record<string, unknown>;
  created_at: Date;
  finished_at: Date | null;
}
/** all: every node not completed; upstream: run to here; retry: a failed/cancelled node (and its dependants). */
export type RunKind = "all" | "upstream" | "retry";
export type RunStatus = "running" | "completed" | "failed" | "cancelled";

const RUN_COLUMNS = "id, pipeline_id, kind, target_node_id, node_ids, status, metadata, created_at, finished_at";

/** A run as the API serializes it. */
export function toSerializedRun(r: RunRow) {
  return {
    id: r.id,
    pipeline_id: r.pipeline_id,
    kind: r.kind,
    target_node_id: r.target_node_id,
    node_ids: r.node_ids,
    status: r.status,
    metadata: r.metadata,
    created_at: r.created_at.toISOString(),
    finished_at: r.finished_at?.toISOString() ?? null,
  };
}
export type SerializedRun = ReturnType<typeof toSerializedRun>;

export interface CreateRunInput {
  id: string;
  pipelineId: string;
  kind: RunKind;
  targetNodeId?: string;
  nodeIds: string[];
  /**
   * Initial run metadata ({ estimate, force }). The pipeline's metadata gets lastRunId and, from the estimate,
   * estimatedTotalCost.
   */
  metadata?: { estimate?: { estimatedTotalCost: number }; force?: boolean } & Record<string, unknown>;
}

/** State-writer: records a run; the same id again returns the stored run (idempotent). */
export async function createRun(db: Queryable, input: CreateRunInput): Promise<RunRow> {
  const { rows } = await db.query<RunRow>(
    `WITH ins AS (
       INSERT INTO video_production_runs (id, pipeline_id, kind, target_node_id, node_ids, metadata)
       VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb)
       ON CONFLICT (id) DO NOTHING
       RETURNING ${RUN_COLUMNS}),
     pipeline AS (
       UPDATE video_production_pipelines
       SET metadata = COALESCE(metadata, '{}'::jsonb) || jsonb_strip_nulls(jsonb_build_object('lastRunId', $1::text, 'estimatedTotalCost', $7::numeric))
       WHERE id = $2 AND EXISTS (SELECT 1 FROM ins))
     SELECT ${RUN_COLUMNS} FROM ins
     UNION ALL SELECT ${RUN_COLUMNS} FROM video_production_runs WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM ins)`,
    [
      input.id,
      input.pipelineId,
      input.kind,
      input.targetNodeId ?? null,
      JSON.stringify(input.nodeIds),
      JSON.stringify(input.metadata ?? {}),
      input.metadata?.estimate?.estimatedTotalCost ?? null,
    ],
  );
  return rows[0]!;
}

/**
 * State-writer: running -> completed | failed | cancelled with a summary merged into metadata. Only a running
 * run finishes (a repeated finish changes nothing and returns the run as it is); null when it does not exist.
 */
export async function finishRun(
  db: Queryable,
  { id, status, summary }: { id: string; status: Exclude<RunStatus, "running">; summary: Record<string, unknown> },
): Promise<RunRow | null> {
  const updated = await db.query<RunRow>(
    `UPDATE video_production_runs SET status = $2, finished_at = clock_timestamp(), metadata = metadata || $3::jsonb
     WHERE id = $1 AND status = 'running' RETURNING ${RUN_COLUMNS}`,
    [id, status, JSON.stringify(summary)],
  );
  return updated.rows[0] ?? getRun(db, id);
}

export async function getRun(db: Queryable, id: string): Promise<RunRow | null> {
  const { rows } = await db.query<RunRow>(`SELECT ${RUN_COLUMNS} FROM video_production_runs WHERE id = $1`, [id]);
  return rows[0] ?? null;
}

/** Run history of a pipeline, newest first. */
export async function listRuns(db: Queryable, pipelineId: string, { limit = 50 } = {}): Promise<RunRow[]> {
  const { rows } = await db.query<RunRow>(`SELECT ${RUN_COLUMNS} FROM video_production_runs WHERE pipeline_id = $1 ORDER BY created_at DESC, id LIMIT $2`, [
    pipelineId,
    limit,
  ]);
  return rows;
}

/** Every run still running (the scheduler rebuilds them on start). */
export async function listRunningRuns(db: Queryable): Promise<RunRow[]> {
  const { rows } = await db.query<RunRow>(`SELECT ${RUN_COLUMNS} FROM video_production_runs WHERE status = 'running' ORDER BY created_at`);
  return rows;
}
