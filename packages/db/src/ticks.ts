import type pg from "pg";
import { createPool } from "./connection";
import type { NodeRow } from "./rows";
import { describeNodeState, holderGuard, holdsAttempt, reportStateTransaction, type StateOutcome, type StateRejectCode } from "./state";

/**
 * The progress-tick fast path (the state-writer's most frequent write).
 *
 * A progress tick never changes a node's status nor the pipeline's progress counts, so it needs neither the pipeline
 * row lock nor a recount (the transaction form, recordProgress in state.ts, takes both). A tick is ONE guarded
 * statement: `UPDATE ... SET metadata = metadata || {progress}, state_version + 1 WHERE <node> AND <holder guard>
 * RETURNING ...`. In READ COMMITTED the row lock and the guard's re-check on the newest row version are atomic, so a
 * tick can never land on a node that a concurrent transition completed, failed or handed to another attempt. The
 * pipeline's metadata for the committed event is read in the same statement, without a lock.
 *
 * Durability: the statement commits on its own (autocommit), on a connection whose session has
 * `synchronous_commit = off` (createTickPool): a lost tick is harmless. Status-changing transitions never run on that
 * pool, so they keep their durable commits.
 *
 * Only when the statement changes no row is the node read again, to give the reason (rejected) or to see that the
 * tick is already stored (`already`: the same holder's progress already has this percent, e.g. the redelivery of a
 * tick whose event was not published; the state-writer publishes the same event id again).
 */

export interface ProgressTick {
  pipelineId: string;
  nodeId: string;
  jobId: string;
  attempt: number;
  /** 0..100 */
  percent: number;
}

/** What a tick's committed event needs of the node (the structure columns are not read). */
export type TickNodeRow = Pick<NodeRow, "id" | "pipeline_id" | "type" | "status" | "metadata" | "output" | "state_version">;

export interface TickResult {
  outcome: StateOutcome;
  code?: StateRejectCode;
  reason?: string;
  /** The node after the write (applied) or as it is (already / rejected); null when it does not exist. */
  node: TickNodeRow | null;
  /** The pipeline's metadata as committed when the statement ran (read without a lock); {} when it does not exist. */
  pipelineMetadata: Record<string, unknown>;
}

/** A pool, or a client, that takes named (prepared) statements. */
export interface TickDb {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(config: pg.QueryConfig): Promise<pg.QueryResult<R>>;
}

export const TICK_NODE_COLUMNS = ["id", "pipeline_id", "type", "status", "metadata", "output", "state_version"] as const;
const COLUMNS = TICK_NODE_COLUMNS.join(", ");
const COLUMNS_OF_N = TICK_NODE_COLUMNS.map((c) => `n.${c}`).join(", ");

/** The tick changes something: the holder's stored progress is not already this percent. */
const newPercent = (percent: string) => `metadata -> 'progress' IS DISTINCT FROM to_jsonb(${percent}::float8)`;
const SET_PROGRESS = (percent: string) =>
  `metadata = COALESCE(metadata, '{}'::jsonb) || jsonb_build_object('progress', ${percent}::float8), state_version = state_version + 1`;

/** One tick: $1 pipeline, $2 node, $3 jobId, $4 attempt, $5 percent. */
export const PROGRESS_TICK_SQL = `UPDATE video_production_nodes
SET ${SET_PROGRESS("$5")}
WHERE pipeline_id = $1 AND id = $2 AND ${holderGuard("$3", "$4")} AND ${newPercent("$5")}
RETURNING ${COLUMNS}, (SELECT metadata FROM video_production_pipelines WHERE id = $1) AS pipeline_metadata`;

/**
 * Many ticks of distinct nodes (of any pipelines) in one statement. The rows are first locked with SKIP LOCKED:
 * a multi-row UPDATE that waited for a row lock while holding others could deadlock with a group commit that locks
 * the same nodes in another order. A row held by someone else is simply not in this statement; its tick is then
 * written alone (waiting for that one lock, holding none: no deadlock).
 */
const PROGRESS_TICKS_SQL = `WITH t AS (
  SELECT * FROM unnest($1::varchar[], $2::varchar[], $3::text[], $4::int[], $5::float8[]) AS t(t_pipeline, t_node, t_job, t_attempt, t_percent)
), locked AS MATERIALIZED (
  SELECT n.pipeline_id, n.id FROM video_production_nodes n JOIN t ON n.pipeline_id = t.t_pipeline AND n.id = t.t_node
  WHERE ${holderGuard("t.t_job", "t.t_attempt")} AND ${newPercent("t.t_percent")}
  FOR UPDATE OF n SKIP LOCKED
)
UPDATE video_production_nodes n
SET ${SET_PROGRESS("t.t_percent")}
FROM locked JOIN t ON t.t_pipeline = locked.pipeline_id AND t.t_node = locked.id
WHERE n.pipeline_id = locked.pipeline_id AND n.id = locked.id AND ${holderGuard("t.t_job", "t.t_attempt")} AND ${newPercent("t.t_percent")}
RETURNING ${COLUMNS_OF_N}, (SELECT p.metadata FROM video_production_pipelines p WHERE p.id = n.pipeline_id) AS pipeline_metadata`;

/** Statement names: each connection parses and plans them once. */
const ONE = "vp_progress_tick";
const MANY = "vp_progress_ticks";
const WHY = "vp_progress_tick_reason";

type ReturnedRow = TickNodeRow & { pipeline_metadata: Record<string, unknown> | null };

function applied(row: ReturnedRow): TickResult {
  const { pipeline_metadata, ...node } = row;
  return { outcome: "applied", node, pipelineMetadata: pipeline_metadata ?? {} };
}

/**
 * One progress tick as one statement (see the top of this file). Run it on a tick pool (createTickPool), so it
 * commits asynchronously like the transaction form does.
 */
export async function applyProgressTick(db: TickDb, tick: ProgressTick): Promise<TickResult> {
  const started = performance.now();
  try {
    const result = await tickAlone(db, tick);
    reportStateTransaction((performance.now() - started) / 1000, result.outcome);
    return result;
  } catch (error) {
    reportStateTransaction((performance.now() - started) / 1000, "error");
    throw error;
  }
}

async function tickAlone(db: TickDb, tick: ProgressTick): Promise<TickResult> {
  const { pipelineId, nodeId, jobId, attempt, percent } = tick;
  for (let round = 1; ; round++) {
    const { rows } = await db.query<ReturnedRow>({ name: ONE, text: PROGRESS_TICK_SQL, values: [pipelineId, nodeId, jobId, attempt, percent] });
    if (rows[0]) return applied(rows[0]);
    // Undefined: the node became this attempt's between the UPDATE and the read (a claim committed in between).
    const why = await reason(db, tick, round === 3);
    if (why) return why;
  }
}

/**
 * Why a tick changed nothing, read after the fact (no lock: the answer is as of the read). Undefined when the node
 * now holds for the tick with another percent (it changed in between; the caller writes again), unless `final`.
 */
async function reason(db: TickDb, tick: ProgressTick, final = false): Promise<TickResult | undefined> {
  const { pipelineId, nodeId, jobId, attempt, percent } = tick;
  const { rows } = await db.query<ReturnedRow & { pipeline_found: boolean }>({
    name: WHY,
    text: `SELECT true AS pipeline_found, p.metadata AS pipeline_metadata, ${TICK_NODE_COLUMNS.map((c) => `n.${c}`).join(", ")}
           FROM video_production_pipelines p LEFT JOIN video_production_nodes n ON n.pipeline_id = p.id AND n.id = $2
           WHERE p.id = $1`,
    values: [pipelineId, nodeId],
  });
  const row = rows[0];
  if (!row) return { outcome: "rejected", code: "not_found", reason: "Pipeline not found", node: null, pipelineMetadata: {} };
  const pipelineMetadata = row.pipeline_metadata ?? {};
  if (row.id === null) return { outcome: "rejected", code: "not_found", reason: "Node not found", node: null, pipelineMetadata };
  const { pipeline_metadata: _m, pipeline_found: _f, ...node } = row;
  // holds() and describe() look at status and metadata only.
  const asNode = node as NodeRow;
  if (holdsAttempt(asNode, jobId, attempt)) {
    if (node.metadata?.progress === percent) return { outcome: "already", node, pipelineMetadata };
    if (!final) return undefined;
    return {
      outcome: "rejected",
      code: "stale",
      reason: `Progress of job ${jobId} attempt ${attempt} not written: the node changed concurrently`,
      node,
      pipelineMetadata,
    };
  }
  return {
    outcome: "rejected",
    code: "stale",
    reason: `Progress of job ${jobId} attempt ${attempt} ignored (${describeNodeState(asNode)})`,
    node,
    pipelineMetadata,
  };
}

/**
 * Ticks of distinct nodes as one multi-row statement; results in input order. A tick the statement did not write
 * (its node is locked by another transaction, no longer held by its attempt, already at this percent, or missing)
 * is then run alone, which waits for the lock and gives the reason. Two ticks of the same node in one call are a
 * caller bug (a node's ticks are coalesced or ordered before they get here).
 */
export async function applyProgressTicks(db: TickDb, ticks: readonly ProgressTick[]): Promise<TickResult[]> {
  if (ticks.length === 1) return [await applyProgressTick(db, ticks[0]!)];
  if (ticks.length === 0) return [];
  const key = (pipelineId: string, nodeId: string) => `${pipelineId}\u0000${nodeId}`;
  const index = new Map<string, number>();
  ticks.forEach((t, i) => {
    const k = key(t.pipelineId, t.nodeId);
    if (index.has(k)) throw new Error(`applyProgressTicks: two ticks of node ${t.nodeId} of pipeline ${t.pipelineId} in one statement`);
    index.set(k, i);
  });
  const started = performance.now();
  let rows: ReturnedRow[];
  try {
    ({ rows } = await db.query<ReturnedRow>({
      name: MANY,
      text: PROGRESS_TICKS_SQL,
      values: [ticks.map((t) => t.pipelineId), ticks.map((t) => t.nodeId), ticks.map((t) => t.jobId), ticks.map((t) => t.attempt), ticks.map((t) => t.percent)],
    }));
  } catch (error) {
    reportStateTransaction((performance.now() - started) / 1000, "error");
    throw error;
  }
  reportStateTransaction((performance.now() - started) / 1000, "applied");
  const results: (TickResult | undefined)[] = new Array(ticks.length);
  for (const row of rows) results[index.get(key(row.pipeline_id, row.id))!] = applied(row);
  await Promise.all(
    ticks.map(async (t, i) => {
      results[i] ??= await applyProgressTick(db, t);
    }),
  );
  return results as TickResult[];
}

/**
 * A pool for progress ticks: every session runs with `synchronous_commit = off` (set at connection start), so a tick's
 * single statement commits asynchronously. Use it for ticks only: anything else committed on it would not be durable.
 */
export function createTickPool(opts: { url: string; applicationName: string; max?: number; onError?: (err: Error) => void }): pg.Pool {
  return createPool({ ...opts, url: tickPoolUrl(opts.url) });
}

/** The URL with `-c synchronous_commit=off` added to its startup options. */
export function tickPoolUrl(url: string): string {
  const u = new URL(url);
  const options = u.searchParams.get("options");
  u.searchParams.set("options", `${options ? `${options} ` : ""}-c synchronous_commit=off`);
  return u.toString();
}
