import type { PipelineLimits } from "@vp/contracts";
import type pg from "pg";
import { type Queryable, type TransactionScope, withTransaction } from "./connection";
import { importPipeline, type ImportPipelineInput } from "./editor";
import type { RunStatus } from "./runs";

/**
 * Batches (video_production_batches, _batch_rows): one template pipeline run over many rows of variable values.
 * Each row is its own pipeline (a clone of the template, its variables' defaults set to the row's values) run as a
 * normal run all. Orchestration records, written by the gateway as the editor role; runs and nodes are only read.
 */

export type BatchStatus = "running" | "completed" | "failed" | "cancelled";
export type BatchRowStatus = "waiting" | "running" | "completed" | "failed" | "cancelled";
export const BATCH_ROW_STATUSES = ["waiting", "running", "completed", "failed", "cancelled"] as const satisfies readonly BatchRowStatus[];
export type BatchCounts = Record<BatchRowStatus, number>;

export interface BatchRecord {
  id: string;
  pipeline_id: string;
  status: BatchStatus;
  concurrency: number;
  max_cost: number | null;
  output_node_id: string | null;
  estimate: Record<string, unknown>;
  counts: Partial<BatchCounts>;
  total_cost: number;
  cost_saved: number;
  created_by: string;
  created_at: Date;
  finished_at: Date | null;
}

export interface BatchRowRecord {
  batch_id: string;
  index: number;
  values: Record<string, string | number>;
  pipeline_id: string | null;
  run_id: string | null;
  status: BatchRowStatus;
  cost: number | null;
  cost_saved: number | null;
  output: Record<string, unknown> | null;
  error: string | null;
  updated_at: Date;
}

const BATCH_COLUMNS = `id, pipeline_id, status, concurrency, max_cost::float8 AS max_cost, output_node_id, estimate, counts,
  total_cost::float8 AS total_cost, cost_saved::float8 AS cost_saved, created_by, created_at, finished_at`;
const ROW_COLUMNS = `batch_id, index, "values", pipeline_id, run_id, status, cost::float8 AS cost, cost_saved::float8 AS cost_saved, output, error, updated_at`;

/** The batch's transaction as a scope: each row's import runs under a savepoint of it instead of committing on its own. */
class BatchScope implements TransactionScope {
  readonly inTransaction = true as const;
  broken?: Error;
  private savepoints = 0;
  constructor(private readonly client: Queryable) {}
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]) {
    return this.client.query<R>(text, values);
  }
  nextSavepoint(): string {
    return `vp_batch_row_${++this.savepoints}`;
  }
}

export interface NewBatchRow {
  index: number;
  values: Record<string, string | number>;
  /** The row's pipeline: the template's clone with the row's media values in its bound assets. */
  pipeline: ImportPipelineInput;
  /** The row pipeline's variable declarations (the template's, defaults set to the row's text and number values). */
  variables: unknown[];
}

export interface NewBatch {
  id: string;
  pipelineId: string;
  concurrency: number;
  maxCost: number | null;
  outputNodeId: string | null;
  estimate: Record<string, unknown>;
  createdBy: string;
  rows: readonly NewBatchRow[];
}

/**
 * Creates the batch, every row's pipeline (each as an import: the whole graph or nothing) and the rows, waiting, in
 * one transaction: either all of it exists afterwards or nothing does.
 */
export function createBatch(db: Queryable, input: NewBatch, limits?: PipelineLimits): Promise<{ batch: BatchRecord; rows: BatchRowRecord[] }> {
  return withTransaction(db, async (tx) => {
    const counts: BatchCounts = { waiting: input.rows.length, running: 0, completed: 0, failed: 0, cancelled: 0 };
    const { rows: created } = await tx.query<BatchRecord>(
      `INSERT INTO video_production_batches (id, pipeline_id, concurrency, max_cost, output_node_id, estimate, counts, created_by)
       VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8) RETURNING ${BATCH_COLUMNS}`,
      [
        input.id,
        input.pipelineId,
        input.concurrency,
        input.maxCost,
        input.outputNodeId,
        JSON.stringify(input.estimate),
        JSON.stringify(counts),
        input.createdBy,
      ],
    );
    const rows: BatchRowRecord[] = [];
    const scope = new BatchScope(tx);
    for (const row of input.rows) {
      const { pipeline } = await importPipeline(scope, row.pipeline, limits, { by: input.createdBy });
      await tx.query(`UPDATE video_production_pipelines SET batch_id = $2, batch_row = $3, variables = $4::jsonb WHERE id = $1`, [
        pipeline.id,
        input.id,
        row.index,
        JSON.stringify(row.variables),
      ]);
      const { rows: inserted } = await tx.query<BatchRowRecord>(
        `INSERT INTO video_production_batch_rows (batch_id, index, "values", pipeline_id) VALUES ($1, $2, $3::jsonb, $4) RETURNING ${ROW_COLUMNS}`,
        [input.id, row.index, JSON.stringify(row.values), pipeline.id],
      );
      rows.push(inserted[0]!);
    }
    if (scope.broken) throw scope.broken;
    return { batch: created[0]!, rows };
  });
}

/** A pipeline's first failed node (by id) with its error, for a batch row's reason; null when none failed. */
export async function firstFailedNode(db: Queryable, pipelineId: string): Promise<{ id: string; title: string; error: string | null } | null> {
  const { rows } = await db.query<{ id: string; title: string; error: string | null }>(
    `SELECT id, title, metadata ->> 'error' AS error FROM video_production_nodes WHERE pipeline_id = $1 AND status = 'failed' ORDER BY id LIMIT 1`,
    [pipelineId],
  );
  return rows[0] ?? null;
}

export async function getBatch(db: Queryable, id: string): Promise<BatchRecord | null> {
  const { rows } = await db.query<BatchRecord>(`SELECT ${BATCH_COLUMNS} FROM video_production_batches WHERE id = $1`, [id]);
  return rows[0] ?? null;
}

/** A pipeline's batches, newest first. */
export async function listBatches(db: Queryable, pipelineId: string, { limit = 50 } = {}): Promise<BatchRecord[]> {
  const { rows } = await db.query<BatchRecord>(
    `SELECT ${BATCH_COLUMNS} FROM video_production_batches WHERE pipeline_id = $1 ORDER BY created_at DESC, id LIMIT $2`,
    [pipelineId, limit],
  );
  return rows;
}

/** A batch's rows in order. */
export async function listBatchRows(db: Queryable, batchId: string): Promise<BatchRowRecord[]> {
  const { rows } = await db.query<BatchRowRecord>(`SELECT ${ROW_COLUMNS} FROM video_production_batch_rows WHERE batch_id = $1 ORDER BY index`, [batchId]);
  return rows;
}

/** Batches the driver looks after: those not ended yet (running ones, and cancelled ones whose running rows have not all ended). */
export async function listActiveBatches(db: Queryable): Promise<BatchRecord[]> {
  const { rows } = await db.query<BatchRecord>(`SELECT ${BATCH_COLUMNS} FROM video_production_batches WHERE finished_at IS NULL ORDER BY created_at`);
  return rows;
}

/** A row with what its run says now (null: no run recorded for its run_id yet). */
export interface BatchRowWithRun extends BatchRowRecord {
  run: { status: RunStatus; metadata: Record<string, unknown>; finished_at: Date | null } | null;
}

export async function listBatchRowsWithRuns(db: Queryable, batchId: string): Promise<BatchRowWithRun[]> {
  const { rows } = await db.query<
    BatchRowRecord & { run_status: RunStatus | null; run_metadata: Record<string, unknown> | null; run_finished_at: Date | null }
  >(
    `SELECT r.batch_id, r.index, r."values", r.pipeline_id, r.run_id, r.status, r.cost::float8 AS cost, r.cost_saved::float8 AS cost_saved,
            r.output, r.error, r.updated_at,
            u.status AS run_status, u.metadata AS run_metadata, u.finished_at AS run_finished_at
     FROM video_production_batch_rows r LEFT JOIN video_production_runs u ON u.id = r.run_id
     WHERE r.batch_id = $1 ORDER BY r.index`,
    [batchId],
  );
  return rows.map(({ run_status, run_metadata, run_finished_at, ...row }) => ({
    ...row,
    run: run_status ? { status: run_status, metadata: run_metadata ?? {}, finished_at: run_finished_at } : null,
  }));
}

export interface BatchRowPatch {
  status?: BatchRowStatus;
  runId?: string | null;
  cost?: number | null;
  costSaved?: number | null;
  output?: Record<string, unknown> | null;
  error?: string | null;
}

/**
 * Writes a row's fields (those given), only while it is in one of `from` (and, with `runId`, still on that run):
 * a decision made on an older reading of the row changes nothing. Returns the row as written, or null.
 */
export async function updateBatchRow(
  db: Queryable,
  batchId: string,
  index: number,
  patch: BatchRowPatch,
  where: { from: readonly BatchRowStatus[]; runId?: string | null },
): Promise<BatchRowRecord | null> {
  const has = (k: keyof BatchRowPatch) => Object.hasOwn(patch, k);
  const { rows } = await db.query<BatchRowRecord>(
    `UPDATE video_production_batch_rows SET
       status = COALESCE($3, status),
       run_id = CASE WHEN $4 THEN $5 ELSE run_id END,
       cost = CASE WHEN $6 THEN $7::numeric ELSE cost END,
       cost_saved = CASE WHEN $8 THEN $9::numeric ELSE cost_saved END,
       output = CASE WHEN $10 THEN $11::jsonb ELSE output END,
       error = CASE WHEN $12 THEN $13 ELSE error END,
       updated_at = clock_timestamp()
     WHERE batch_id = $1 AND index = $2 AND status = ANY($14::varchar[]) AND ($15::boolean IS NOT TRUE OR run_id IS NOT DISTINCT FROM $16)
     RETURNING ${ROW_COLUMNS}`,
    [
      batchId,
      index,
      patch.status ?? null,
      has("runId"),
      patch.runId ?? null,
      has("cost"),
      patch.cost ?? null,
      has("costSaved"),
      patch.costSaved ?? null,
      has("output"),
      patch.output === undefined || patch.output === null ? null : JSON.stringify(patch.output),
      has("error"),
      patch.error ?? null,
      [...where.from],
      Object.hasOwn(where, "runId"),
      where.runId ?? null,
    ],
  );
  return rows[0] ?? null;
}

/** Records a batch's counts and totals, and its status and end when given. */
export async function updateBatch(
  db: Queryable,
  id: string,
  patch: { counts: BatchCounts; totalCost: number; costSaved: number; status?: BatchStatus; finished?: boolean | null },
): Promise<BatchRecord | null> {
  const { rows } = await db.query<BatchRecord>(
    `UPDATE video_production_batches SET counts = $2::jsonb, total_cost = $3, cost_saved = $4, status = COALESCE($5, status),
       finished_at = CASE WHEN $6::boolean IS TRUE THEN clock_timestamp() WHEN $6::boolean IS FALSE THEN NULL ELSE finished_at END
     WHERE id = $1 RETURNING ${BATCH_COLUMNS}`,
    [id, JSON.stringify(patch.counts), patch.totalCost, patch.costSaved, patch.status ?? null, patch.finished ?? null],
  );
  return rows[0] ?? null;
}

/** Sets a batch's status (cancel: cancelled; retry: running again, not finished). */
export async function setBatchStatus(db: Queryable, id: string, status: BatchStatus, { reopen = false } = {}): Promise<BatchRecord | null> {
  const { rows } = await db.query<BatchRecord>(
    `UPDATE video_production_batches SET status = $2, finished_at = CASE WHEN $3 THEN NULL ELSE finished_at END WHERE id = $1 RETURNING ${BATCH_COLUMNS}`,
    [id, status, reopen],
  );
  return rows[0] ?? null;
}

/** Advisory lock key of the batch driver: one gateway drives batches at a time. */
const DRIVER_LOCK = 7_366_400_000;

/**
 * Runs `fn` in a transaction holding the driver's lock, or returns null at once when another gateway holds it. With
 * `wait`, waits for the lock instead (a cancel or retry: a driver pass is short, and then cannot start rows meanwhile).
 */
export function withBatchDriverLock<T>(db: Queryable, fn: (tx: Queryable) => Promise<T>, { wait = false } = {}): Promise<T | null> {
  return withTransaction(db, async (tx) => {
    if (wait) {
      await tx.query(`SELECT pg_advisory_xact_lock($1)`, [DRIVER_LOCK]);
      return fn(tx);
    }
    const { rows } = await tx.query<{ locked: boolean }>(`SELECT pg_try_advisory_xact_lock($1) AS locked`, [DRIVER_LOCK]);
    return rows[0]?.locked ? fn(tx) : null;
  });
}

/** Waiting rows (all, or the one at `index`) become cancelled; returns their indexes. */
export async function cancelWaitingRows(db: Queryable, batchId: string, index?: number): Promise<number[]> {
  const { rows } = await db.query<{ index: number }>(
    `UPDATE video_production_batch_rows SET status = 'cancelled', error = 'cancelled before it started', updated_at = clock_timestamp()
     WHERE batch_id = $1 AND status = 'waiting' AND ($2::int IS NULL OR index = $2) RETURNING index`,
    [batchId, index ?? null],
  );
  return rows.map((r) => r.index).sort((a, b) => a - b);
}

/** Failed and cancelled rows wait again (their last run's cost, output and error cleared); returns their indexes. */
export async function resetRowsForRetry(db: Queryable, batchId: string): Promise<number[]> {
  const { rows } = await db.query<{ index: number }>(
    `UPDATE video_production_batch_rows SET status = 'waiting', run_id = NULL, cost = NULL, cost_saved = NULL, output = NULL, error = NULL,
       updated_at = clock_timestamp()
     WHERE batch_id = $1 AND status IN ('failed', 'cancelled') RETURNING index`,
    [batchId],
  );
  return rows.map((r) => r.index).sort((a, b) => a - b);
}

/** Webhook endpoints of a pipeline that want `event`. */
export async function endpointsFor(db: Queryable, pipelineId: string, event: string): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(`SELECT id FROM video_production_webhook_endpoints WHERE pipeline_id = $1 AND $2 = ANY (events)`, [
    pipelineId,
    event,
  ]);
  return rows.map((r) => r.id);
}
