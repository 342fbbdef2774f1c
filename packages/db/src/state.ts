import type pg from "pg";
import type { NodeOutput, NodeStatus } from "@vp/contracts";
import { withTransaction, type Queryable, type TransactionScope } from "./connection";
import { NODE_COLUMNS, type NodeRow } from "./rows";

/**
 * State-writer queries (run as vp_state_writer): the only writes to status, metadata and output.
 *
 * Every function is one transaction:
 *  (a) lock the pipeline row, then the node row, in one statement (`FOR UPDATE OF p, n`): the same order the
 *      editor uses (it bumps the pipeline's updated_at before touching a node), so the two never deadlock;
 *  (b) decide on the locked row, then run a guarded UPDATE of the node that also bumps state_version;
 *      JSONB changes go through `||` / `-` only, never a whole-column write;
 *  (c) when the status changed, recompute the pipeline's metadata.progress and metadata.totalCost in the
 *      UPDATE's own statement: the other nodes as committed (the pipeline's lock is held, so none can change),
 *      this node as the UPDATE returned it.
 * So a transition is BEGIN, 2 statements (a 3rd to fill the cache on completion), COMMIT.
 *
 * Timestamps written into metadata are the database's now() as ISO 8601 in UTC with a Z
 * (`2025-01-01T12:00:00.000Z`, the same shape as Date#toISOString()).
 */

export type StateOutcome = "applied" | "already" | "rejected";
export type StateRejectCode = "not_ready" | "not_found" | "already_done" | "stale" | "conflict";

export interface StateResult {
  outcome: StateOutcome;
  code?: StateRejectCode;
  reason?: string;
  /** The node after the write (applied) or as it is (already / rejected); null when it does not exist. */
  node: NodeRow | null;
  /** The pipeline's metadata after the transaction ({} when the pipeline does not exist). */
  pipelineMetadata: Record<string, unknown>;
}

/** now() as an ISO 8601 UTC string with millisecond precision and a Z, as jsonb. */
const NOW_ISO = `to_jsonb(to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))`;
const META = `COALESCE(metadata, '{}'::jsonb)`;
/** metadata keys of a previous job, dropped when a node starts a new one (history is kept). */
const DROPPED_ON_NEW_JOB =
  "{error,startedAt,completedAt,progress,retries,provider,providerJobId,providerJob,estimatedCost,runId,cancelledAt,cancelledBy,cacheKey,cached,cachedFrom,costSaved,attempt,claimId,delivery,heartbeatAt,queuedAt}";

type Decision =
  | {
      kind: "apply";
      /** SET list (without state_version); parameters start at $3. */
      set: string;
      /** Extra WHERE condition re-checking what the decision relied on. */
      guard: string;
      params: unknown[];
    }
  | { kind: "already" }
  | { kind: "reject"; code: StateRejectCode; reason: string };

/** NODE_COLUMNS of the node table aliased `n`. */
const NODE_COLUMNS_OF_N = NODE_COLUMNS.split(", ")
  .map((c) => `n.${c}`)
  .join(", ");

/** One row `c` of a pipeline's counts by status and cost sums, over `source` (rows with status and metadata). */
const PROGRESS_COUNTS = (source: string) => `
  SELECT count(*) FILTER (WHERE status = 'completed') AS completed,
         count(*) FILTER (WHERE status = 'in_progress') AS in_progress,
         count(*) FILTER (WHERE status = 'pending') AS pending,
         count(*) FILTER (WHERE status = 'failed') AS failed,
         count(*) FILTER (WHERE status = 'queued') AS queued,
         count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
         count(*) AS total,
         COALESCE(sum(CASE WHEN jsonb_typeof(metadata -> 'cost') = 'number'
                           THEN (metadata ->> 'cost')::numeric END), 0) AS total_cost,
         COALESCE(sum(CASE WHEN jsonb_typeof(metadata -> 'costSaved') = 'number'
                           THEN (metadata ->> 'costSaved')::numeric END), 0) AS cost_saved
  FROM ${source}`;

/** The pipeline's metadata `p.metadata` with progress, totalCost and costSaved taken from counts `c`. */
const PIPELINE_METADATA_FROM_COUNTS = `COALESCE(p.metadata, '{}'::jsonb) || jsonb_build_object(
    'progress', jsonb_build_object(
      'completed', c.completed, 'in_progress', c.in_progress, 'pending', c.pending,
      'failed', c.failed, 'queued', c.queued, 'cancelled', c.cancelled, 'total', c.total),
    'totalCost', c.total_cost, 'costSaved', c.cost_saved)`;

interface PipelineLockRow {
  metadata: Record<string, unknown> | null;
}

function storedAttempt(node: NodeRow): number {
  const a = node.metadata?.attempt;
  return typeof a === "number" ? a : 0;
}

function storedJob(node: NodeRow): string | undefined {
  const j = node.metadata?.jobId;
  return typeof j === "string" ? j : undefined;
}

/** The node is in_progress for this job at this attempt: the one attempt allowed to report for it. */
function holds(node: NodeRow, jobId: string, attempt: number): boolean {
  return node.status === "in_progress" && storedJob(node) === jobId && storedAttempt(node) === attempt;
}

/** SQL re-check of `holds` for a jobId and an attempt given as SQL expressions (parameters or columns). */
export function holderGuard(jobId: string, attempt: string): string {
  return `status = 'in_progress' AND metadata ->> 'jobId' = ${jobId} AND metadata -> 'attempt' = to_jsonb(${attempt}::int)`;
}

/** SQL re-check of `holds` in a guarded UPDATE, with the jobId as $3 and the attempt as $4. */
const HOLDER_GUARD = holderGuard("$3", "$4");

function describe(node: NodeRow): string {
  const job = storedJob(node);
  return `status: ${node.status}, job: ${job ?? "none"}, attempt: ${storedAttempt(node)}`;
}

// The progress-tick fast path (ticks.ts) decides with the same checks.
export { holds as holdsAttempt, describe as describeNodeState };

type TransactionObserver = (seconds: number, outcome: StateOutcome | "error") => void;
let transactionObserver: TransactionObserver | undefined;

/** Reports a state transaction run outside transition() (the progress-tick fast path, ticks.ts) to the observer. */
export function reportStateTransaction(seconds: number, outcome: StateOutcome | "error"): void {
  transactionObserver?.(seconds, outcome);
}

/** The state-writer's metrics hook: called with every state transaction's duration (BEGIN to COMMIT) and outcome. */
export function observeStateTransactions(observer: TransactionObserver | undefined): void {
  transactionObserver = observer;
}

type TransitionOptions = { asyncCommit?: boolean; afterApply?: (tx: Queryable, after: NodeRow) => Promise<void> };

async function transition(
  db: Queryable,
  pipelineId: string,
  nodeId: string,
  decide: (node: NodeRow) => Decision,
  opts: TransitionOptions = {},
): Promise<StateResult> {
  const started = performance.now();
  try {
    const result = await transactionBody(db, pipelineId, nodeId, decide, opts);
    transactionObserver?.((performance.now() - started) / 1000, result.outcome);
    return result;
  } catch (error) {
    transactionObserver?.((performance.now() - started) / 1000, "error");
    throw error;
  }
}

async function transactionBody(
  db: Queryable,
  pipelineId: string,
  nodeId: string,
  decide: (node: NodeRow) => Decision,
  opts: TransitionOptions = {},
): Promise<StateResult> {
  return withTransaction(db, (tx) => transitionIn(tx, pipelineId, nodeId, decide, opts));
}

/** The node as locked with the pipeline's metadata, or the answer when the pipeline does not exist. */
type Locked = { node: NodeRow | undefined; pipelineMetadata: Record<string, unknown> } | StateResult;

/** One transition inside its transaction (or its savepoint of a group commit): lock, decide, guarded UPDATE. */
async function transitionIn(
  tx: Queryable,
  pipelineId: string,
  nodeId: string,
  decide: (node: NodeRow) => Decision,
  opts: TransitionOptions,
): Promise<StateResult> {
  // Inside a group commit (runStateBatch) this runs under a savepoint: the batch locked the pipeline row, decides
  // the commit's durability and recomputes the pipeline's metadata once at its end.
  const scope = tx instanceof StateBatch ? tx : undefined;
  const batch = scope?.pipelineId === pipelineId ? scope : undefined;
  if (opts.asyncCommit && !scope) {
    // A lost progress tick is harmless; terminal writes keep full durability.
    await tx.query("SET LOCAL synchronous_commit = off");
  }
  // Both rows locked by one statement (pipeline first, as everywhere); a batch already holds the pipeline's lock.
  const locked = batch ? await lockNodeInBatch(tx, batch, pipelineId, nodeId) : await lockPipelineAndNode(tx, pipelineId, nodeId);
  if ("outcome" in locked) return locked;
  const { node } = locked;
  let { pipelineMetadata } = locked;
  if (!node) {
    return { outcome: "rejected", code: "not_found", reason: "Node not found", node: null, pipelineMetadata };
  }
  const decision = decide(node);
  if (decision.kind === "already") return { outcome: "already", node, pipelineMetadata };
  if (decision.kind === "reject") {
    return { outcome: "rejected", code: decision.code, reason: decision.reason, node, pipelineMetadata };
  }
  const params = [pipelineId, nodeId, ...decision.params];
  const update = `UPDATE video_production_nodes
       SET ${decision.set}, state_version = state_version + 1
       WHERE pipeline_id = $1 AND id = $2 AND (${decision.guard})
       RETURNING ${NODE_COLUMNS}`;
  const updated = batch ? await updateInBatch(tx, batch, update, params, node) : await updateWithRecount(tx, update, params, node);
  const after = updated.after;
  if (updated.pipelineMetadata) pipelineMetadata = updated.pipelineMetadata;
  if (!after) {
    // Cannot happen while the row is locked, but never report a write that did not happen.
    return { outcome: "rejected", code: "stale", reason: `Node changed concurrently (${describe(node)})`, node, pipelineMetadata };
  }
  if (opts.afterApply) await opts.afterApply(tx, after);
  if (scope && !opts.asyncCommit) scope.durable = true;
  return { outcome: "applied", node: after, pipelineMetadata };
}

/** In a group commit of the pipeline: the batch holds the pipeline's lock and knows its metadata; lock the node. */
async function lockNodeInBatch(tx: Queryable, batch: StateBatch, pipelineId: string, nodeId: string): Promise<Locked> {
  if (!batch.pipelineExists) {
    return { outcome: "rejected", code: "not_found", reason: "Pipeline not found", node: null, pipelineMetadata: {} };
  }
  const current = await tx.query<NodeRow>(`SELECT ${NODE_COLUMNS} FROM video_production_nodes WHERE pipeline_id = $1 AND id = $2 FOR UPDATE`, [
    pipelineId,
    nodeId,
  ]);
  return { node: current.rows[0], pipelineMetadata: batch.pipelineMetadata };
}

/** On its own: the pipeline row, then the node row, locked by one statement. */
async function lockPipelineAndNode(tx: Queryable, pipelineId: string, nodeId: string): Promise<Locked> {
  const locked = await tx.query<NodeRow & { vp_pipeline_metadata: Record<string, unknown> | null }>(
    `SELECT p.metadata AS vp_pipeline_metadata, ${NODE_COLUMNS_OF_N}
         FROM video_production_pipelines p JOIN video_production_nodes n ON n.pipeline_id = p.id AND n.id = $2
         WHERE p.id = $1 FOR UPDATE OF p, n`,
    [pipelineId, nodeId],
  );
  const row = locked.rows[0];
  if (row) {
    const { vp_pipeline_metadata, ...rest } = row;
    return { node: rest, pipelineMetadata: vp_pipeline_metadata ?? {} };
  }
  // No such node, or no such pipeline: which one decides the answer (rare, so a second statement).
  const pipeline = await tx.query<PipelineLockRow>(`SELECT metadata FROM video_production_pipelines WHERE id = $1 FOR UPDATE`, [pipelineId]);
  if (!pipeline.rows[0]) {
    return { outcome: "rejected", code: "not_found", reason: "Pipeline not found", node: null, pipelineMetadata: {} };
  }
  return { node: undefined, pipelineMetadata: pipeline.rows[0].metadata ?? {} };
}

/** The node after its UPDATE (none if the guard refused it), and the pipeline's metadata when the statement recounted it. */
type Updated = { after?: NodeRow; pipelineMetadata?: Record<string, unknown> };

/** The node's guarded UPDATE in a group commit: the batch recomputes the pipeline's metadata once, before its COMMIT. */
async function updateInBatch(tx: Queryable, batch: StateBatch, update: string, params: unknown[], node: NodeRow): Promise<Updated> {
  const after = (await tx.query<NodeRow>(update, params)).rows[0];
  if (after && after.status !== node.status) batch.progressChanged = true;
  return { after };
}

/**
 * The node's UPDATE and, when its status changed, the pipeline's recount in one statement. The recount reads the
 * other nodes from the statement's snapshot, taken while this transaction holds the pipeline's lock (every writer of
 * a node's status or cost takes it first), and this node from the UPDATE's RETURNING.
 */
async function updateWithRecount(tx: Queryable, update: string, params: unknown[], node: NodeRow): Promise<Updated> {
  const updated = await tx.query<NodeRow & { vp_pipeline_metadata: Record<string, unknown> | null }>(
    `WITH n AS (${update}),
         p AS (
           UPDATE video_production_pipelines p SET metadata = ${PIPELINE_METADATA_FROM_COUNTS}
           FROM (${PROGRESS_COUNTS(`(SELECT status, metadata FROM video_production_nodes WHERE pipeline_id = $1 AND id <> $2
                                     UNION ALL SELECT status, metadata FROM n) s`)}) c
           WHERE p.id = $1 AND EXISTS (SELECT 1 FROM n WHERE n.status IS DISTINCT FROM $${params.length + 1})
           RETURNING p.metadata
         )
         SELECT n.*, (SELECT metadata FROM p) AS vp_pipeline_metadata FROM n`,
    [...params, node.status],
  );
  const row = updated.rows[0];
  if (!row) return {};
  const { vp_pipeline_metadata, ...rest } = row;
  return { after: rest, pipelineMetadata: vp_pipeline_metadata ?? undefined };
}

/**
 * The enclosing transaction of a group commit: a checked-out client inside BEGIN, with the pipeline row already
 * locked. State functions given one run under a savepoint (withTransaction) and leave the pipeline's progress and
 * the commit's durability to runStateBatch.
 */
class StateBatch implements TransactionScope {
  readonly inTransaction = true as const;
  broken?: Error;
  /** A member applied a change that needs a durable commit (anything but progress ticks and heartbeats). */
  durable = false;
  /** A member changed a node's status: the pipeline's progress is recomputed once, before COMMIT. */
  progressChanged = false;
  pipelineExists = false;
  pipelineMetadata: Record<string, unknown> = {};
  private savepoints = 0;

  constructor(
    private readonly client: Queryable,
    readonly pipelineId: string,
  ) {}

  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]) {
    return this.client.query<R>(text, values);
  }

  nextSavepoint(): string {
    return `vp_member_${++this.savepoints}`;
  }
}

export type BatchMember = (tx: Queryable) => Promise<StateResult>;
export type BatchSettled = { ok: true; result: StateResult } | { ok: false; error: unknown };

/**
 * Group commit of one pipeline's state transitions (the state-writer's batching queue). One BEGIN; the pipeline
 * row locked once; each member (a function calling state.ts transitions on the transaction it is given) under its
 * own SAVEPOINT, so a rejected member changes nothing and a failing one rolls back to its savepoint and is reported
 * alone while the others go on; the pipeline's metadata recomputed once if any status changed; one COMMIT,
 * synchronous if any member applied a change that needs durability (progress ticks and heartbeats alone commit
 * asynchronously, as on their own). Members run in order, so a later one sees what earlier ones wrote.
 *
 * Results come back in member order; every result of the pipeline carries the pipeline's metadata as committed
 * by the batch. A single member runs as its own transaction, exactly as without batching. If the transaction
 * itself fails (BEGIN, the lock, COMMIT, a lost connection) the whole call throws and nothing was committed.
 */
export async function runStateBatch(db: Queryable, pipelineId: string, members: BatchMember[]): Promise<BatchSettled[]> {
  if (members.length === 1) {
    try {
      return [{ ok: true, result: await members[0]!(db) }];
    } catch (error) {
      return [{ ok: false, error }];
    }
  }
  return withTransaction(db, async (client) => {
    const batch = new StateBatch(client, pipelineId);
    const locked = await client.query<PipelineLockRow>(`SELECT metadata FROM video_production_pipelines WHERE id = $1 FOR UPDATE`, [pipelineId]);
    batch.pipelineExists = locked.rows.length > 0;
    batch.pipelineMetadata = locked.rows[0]?.metadata ?? {};
    const settled: BatchSettled[] = [];
    for (const member of members) {
      try {
        settled.push({ ok: true, result: await member(batch) });
      } catch (error) {
        // The rollback to the member's savepoint failed too: the transaction is lost, nothing may commit.
        if (batch.broken) throw batch.broken;
        // A member whose query failed outside a savepoint left the transaction aborted (25P02 here): then the
        // whole batch fails rather than answering the others as committed.
        await client.query("SELECT 1");
        settled.push({ ok: false, error });
      }
    }
    if (batch.progressChanged) batch.pipelineMetadata = await recomputePipelineMetadata(client, pipelineId);
    if (!batch.durable) await client.query("SET LOCAL synchronous_commit = off");
    if (batch.pipelineExists) {
      for (const s of settled) {
        if (s.ok && (s.result.node === null || s.result.node.pipeline_id === pipelineId)) s.result.pipelineMetadata = batch.pipelineMetadata;
      }
    }
    return settled;
  });
}

/**
 * Recomputes metadata.progress (counts by status), metadata.totalCost (sum of the nodes' metadata.cost) and
 * metadata.costSaved (sum of metadata.costSaved: results taken from the cache) of a pipeline, merged into its
 * metadata. Returns the new metadata.
 */
export async function recomputePipelineMetadata(db: Queryable, pipelineId: string): Promise<Record<string, unknown>> {
  const { rows } = await db.query<{ metadata: Record<string, unknown> }>(
    `UPDATE video_production_pipelines p
     SET metadata = ${PIPELINE_METADATA_FROM_COUNTS}
     FROM (${PROGRESS_COUNTS("video_production_nodes WHERE pipeline_id = $1")}) c
     WHERE p.id = $1
     RETURNING p.metadata`,
    [pipelineId],
  );
  return rows[0]?.metadata ?? {};
}

export interface ClaimQueuedInput {
  pipelineId: string;
  nodeId: string;
  jobId: string;
  /** The run dispatching the node (recorded as metadata.runId; dropped when absent). */
  runId?: string;
  /** The node's cache key (metadata.cacheKey): its completion fills the cache under it. */
  cacheKey?: string;
}

/**
 * pending -> queued for jobId (the scheduler, before dispatch). metadata gets jobId, queuedAt and
 * attempt 0; the previous run's error, startedAt, completedAt, progress and retries are dropped (a new job).
 * The same jobId again while queued / in_progress / completed -> "already" (idempotent redelivery).
 */
export function claimQueued(db: Queryable, { pipelineId, nodeId, jobId, runId, cacheKey }: ClaimQueuedInput): Promise<StateResult> {
  return transition(db, pipelineId, nodeId, (node) => {
    if (node.status === "pending") {
      return {
        kind: "apply",
        set: `status = 'queued',
              metadata = (${META} - '${DROPPED_ON_NEW_JOB}'::text[])
                         || jsonb_build_object('jobId', $3::text, 'queuedAt', ${NOW_ISO}, 'attempt', 0)
                         || jsonb_strip_nulls(jsonb_build_object('runId', $4::text, 'cacheKey', $5::text))`,
        guard: `status = 'pending'`,
        params: [jobId, runId ?? null, cacheKey ?? null],
      };
    }
    const sameJob = storedJob(node) === jobId;
    if (sameJob && (node.status === "queued" || node.status === "in_progress" || node.status === "completed")) {
      return { kind: "already" };
    }
    return { kind: "reject", code: "not_ready", reason: `Node not ready (status: ${node.status})` };
  });
}

export interface ClaimRunningInput {
  pipelineId: string;
  nodeId: string;
  jobId: string;
  /** JetStream's delivery count of the job message (informational: recorded, never trusted for order). */
  attempt: number;
  /**
   * Unique per delivery. Asking again with the same claimId (a lost reply) is idempotent; any other
   * delivery of the same job supersedes the current holder.
   */
  claimId?: string;
}

/**
 * queued -> in_progress for jobId (the executor, before it spends money), or, when the node is already
 * in_progress for the same job, a takeover by a new delivery (the previous holder stopped heart-beating:
 * it crashed, froze, or its message was handed back). The attempt number is the database's own counter,
 * not JetStream's delivery count (which nats-server 2.9 does not keep monotonic across a killed client's
 * pull requests or a consumer update), so every takeover gets a higher attempt and results of superseded
 * attempts are rejected. metadata.retries = attempt - 1.
 */
export function claimRunning(db: Queryable, { pipelineId, nodeId, jobId, attempt: delivery, claimId }: ClaimRunningInput): Promise<StateResult> {
  return transition(db, pipelineId, nodeId, (node) => {
    const sameJob = storedJob(node) === jobId;
    const stored = storedAttempt(node);
    if (sameJob && node.status === "in_progress" && claimId !== undefined && node.metadata?.claimId === claimId) {
      return { kind: "already" };
    }
    if (sameJob && (node.status === "queued" || node.status === "in_progress")) {
      return {
        kind: "apply",
        set: `status = 'in_progress',
              metadata = ${META} || jsonb_build_object(
                'startedAt', COALESCE(metadata -> 'startedAt', ${NOW_ISO}),
                'heartbeatAt', ${NOW_ISO},
                'attempt', $5::int + 1,
                'retries', $5::int,
                'delivery', $4::int,
                'claimId', $6::text)`,
        guard: `status IN ('queued', 'in_progress') AND metadata ->> 'jobId' = $3 AND COALESCE((metadata ->> 'attempt')::int, 0) = $5::int`,
        params: [jobId, delivery, stored, claimId ?? null],
      };
    }
    if (sameJob && node.status === "completed") {
      return { kind: "reject", code: "already_done", reason: `Node already completed by job ${jobId}` };
    }
    return {
      kind: "reject",
      code: "stale",
      reason: `Job ${jobId} (delivery ${delivery}) cannot start: node is not queued for it (${describe(node)})`,
    };
  });
}

export interface HeartbeatInput {
  pipelineId: string;
  nodeId: string;
  jobId: string;
  attempt: number;
}

/**
 * metadata.heartbeatAt = now while in_progress for this job and attempt: the executor is alive. The
 * scheduler's reconciler revives in_progress nodes whose heartbeat stopped. Committed asynchronously.
 */
export function recordHeartbeat(db: Queryable, { pipelineId, nodeId, jobId, attempt }: HeartbeatInput): Promise<StateResult> {
  return transition(
    db,
    pipelineId,
    nodeId,
    (node) => {
      if (holds(node, jobId, attempt)) {
        return {
          kind: "apply",
          set: `metadata = ${META} || jsonb_build_object('heartbeatAt', ${NOW_ISO})`,
          guard: HOLDER_GUARD,
          params: [jobId, attempt],
        };
      }
      return { kind: "reject", code: "stale", reason: `Heartbeat of job ${jobId} attempt ${attempt} ignored (${describe(node)})` };
    },
    { asyncCommit: true },
  );
}

export interface RecordProgressInput {
  pipelineId: string;
  nodeId: string;
  jobId: string;
  attempt: number;
  /** 0..100 */
  percent: number;
}

/**
 * metadata.progress = percent, only while in_progress for this job and attempt. Committed asynchronously. This is the
 * transaction form (pipeline and node locked), for a group commit of the pipeline; the state-writer's ticks take the
 * single-statement fast path in ticks.ts (applyProgressTick / applyProgressTicks).
 */
export function recordProgress(db: Queryable, { pipelineId, nodeId, jobId, attempt, percent }: RecordProgressInput): Promise<StateResult> {
  return transition(
    db,
    pipelineId,
    nodeId,
    (node) => {
      if (holds(node, jobId, attempt)) {
        return {
          kind: "apply",
          set: `metadata = ${META} || jsonb_build_object('progress', $5::float8)`,
          guard: HOLDER_GUARD,
          params: [jobId, attempt, percent],
        };
      }
      return {
        kind: "reject",
        code: "stale",
        reason: `Progress of job ${jobId} attempt ${attempt} ignored (${describe(node)})`,
      };
    },
    { asyncCommit: true },
  );
}

export interface CompleteNodeInput {
  pipelineId: string;
  nodeId: string;
  jobId: string;
  attempt: number;
  output: NodeOutput | Record<string, unknown>;
  cost: number;
}

/**
 * in_progress (this job and attempt) -> completed: metadata completedAt, cost, progress 100; output
 * merged. The same job's completion again -> "already"; a superseded attempt's late result -> stale.
 */
export function completeNode(db: Queryable, { pipelineId, nodeId, jobId, attempt, output, cost }: CompleteNodeInput): Promise<StateResult> {
  return transition(
    db,
    pipelineId,
    nodeId,
    (node) => {
      const sameJob = storedJob(node) === jobId;
      const stored = storedAttempt(node);
      if (holds(node, jobId, attempt)) {
        return {
          kind: "apply",
          set: `status = 'completed',
              metadata = ${META} || jsonb_build_object('completedAt', ${NOW_ISO}, 'cost', $5::numeric, 'progress', 100),
              output = COALESCE(output, '{}'::jsonb) || $6::jsonb`,
          guard: HOLDER_GUARD,
          params: [jobId, attempt, cost, JSON.stringify(output ?? {})],
        };
      }
      if (node.status === "completed" && sameJob) return { kind: "already" };
      return {
        kind: "reject",
        code: "stale",
        reason: sameJob
          ? `Result of attempt ${attempt} of job ${jobId} rejected: the node is ${node.status} at attempt ${stored}`
          : `Result of attempt ${attempt} of job ${jobId} rejected: the node belongs to ${describe(node)}`,
      };
    },
    { afterApply: fillCache },
  );
}

/**
 * A completed node made under a cache key stores its result there (the newest result of a key wins: a forced
 * run refreshes it). In the completing transaction, so a result is never completed without being cached.
 */
async function fillCache(tx: Queryable, node: NodeRow): Promise<void> {
  const key = node.metadata?.cacheKey;
  if (typeof key !== "string" || !node.output || typeof node.output.s3Key !== "string") return;
  const cost = typeof node.metadata?.cost === "number" ? node.metadata.cost : 0;
  await tx.query(
    `INSERT INTO video_production_cache (cache_key, node_type, output, cost, pipeline_id, node_id, run_id, job_id)
     VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7, $8)
     ON CONFLICT (cache_key) DO UPDATE SET output = EXCLUDED.output, cost = EXCLUDED.cost, pipeline_id = EXCLUDED.pipeline_id,
       node_id = EXCLUDED.node_id, run_id = EXCLUDED.run_id, job_id = EXCLUDED.job_id, created_at = clock_timestamp()`,
    [key, node.type, JSON.stringify(node.output), cost, node.pipeline_id, node.id, stringOrNull(node.metadata?.runId), stringOrNull(node.metadata?.jobId)],
  );
}

const stringOrNull = (v: unknown) => (typeof v === "string" ? v : null);

export interface CacheEntry {
  cache_key: string;
  node_type: string;
  output: Record<string, unknown>;
  cost: number;
  pipeline_id: string;
  node_id: string;
  run_id: string | null;
  job_id: string | null;
  created_at: Date;
  hits: number;
}

/** The cache entries among `keys` (scheduler and gateway: reads only). */
export async function getCacheEntries(db: Queryable, keys: string[]): Promise<Map<string, CacheEntry>> {
  if (!keys.length) return new Map();
  const { rows } = await db.query<CacheEntry & { cost: string | number }>(
    `SELECT cache_key, node_type, output, cost, pipeline_id, node_id, run_id, job_id, created_at, hits
     FROM video_production_cache WHERE cache_key = ANY($1::varchar[])`,
    [keys],
  );
  return new Map(rows.map((r) => [r.cache_key, { ...r, cost: Number(r.cost) }]));
}

/** What each cached key's result cost when it was made (budgets: members found in the cache are saved). */
export async function getCacheCosts(db: Queryable, keys: string[]): Promise<Map<string, number>> {
  return new Map([...(await getCacheEntries(db, keys))].map(([key, entry]) => [key, entry.cost]));
}

export interface CompleteFromCacheInput {
  pipelineId: string;
  nodeId: string;
  cacheKey: string;
  jobId: string;
  runId: string;
}

/**
 * pending -> completed from the cache entry of `cacheKey`: output copied (same stored file), metadata cached,
 * cachedFrom { pipelineId, nodeId, runId }, cost 0 and costSaved = what the entry cost when it was made; the
 * entry's hits counted. No entry -> rejected not_found (the caller executes instead). The same job again ->
 * "already".
 */
export async function completeFromCache(db: Queryable, input: CompleteFromCacheInput): Promise<StateResult> {
  const { pipelineId, nodeId, cacheKey, jobId, runId } = input;
  const entry = (await getCacheEntries(db, [cacheKey])).get(cacheKey);
  return transition(
    db,
    pipelineId,
    nodeId,
    (node) => {
      if (node.status === "completed" && storedJob(node) === jobId) return { kind: "already" };
      if (!entry) return { kind: "reject", code: "not_found", reason: `No cached result for key ${cacheKey}` };
      if (node.status !== "pending") return { kind: "reject", code: "not_ready", reason: `Node not ready (status: ${node.status})` };
      const cachedFrom = { pipelineId: entry.pipeline_id, nodeId: entry.node_id, runId: entry.run_id };
      return {
        kind: "apply",
        set: `status = 'completed',
              output = $3::jsonb,
              metadata = (${META} - '${DROPPED_ON_NEW_JOB}'::text[]) || $4::jsonb
                         || jsonb_build_object('queuedAt', ${NOW_ISO}, 'completedAt', ${NOW_ISO})`,
        guard: `status = 'pending'`,
        params: [
          JSON.stringify(entry.output),
          JSON.stringify({ jobId, runId, cacheKey, cached: true, cachedFrom, cost: 0, costSaved: entry.cost, progress: 100 }),
        ],
      };
    },
    {
      afterApply: async (tx) => {
        await tx.query(`UPDATE video_production_cache SET hits = hits + 1, last_hit_at = clock_timestamp() WHERE cache_key = $1`, [cacheKey]);
      },
    },
  );
}

export interface FailNodeInput {
  pipelineId: string;
  nodeId: string;
  jobId: string;
  attempt: number;
  error: string;
  /** Fail regardless of attempt (given up after the last delivery, or a poison job). */
  final?: boolean;
}

/**
 * queued / in_progress (this job; unless final, this attempt) -> failed with metadata error and
 * completedAt. While queued no attempt has claimed the node yet, so any attempt of the job may fail it.
 * Already failed for the same job -> "already".
 */
export function failNode(db: Queryable, { pipelineId, nodeId, jobId, attempt, error, final = false }: FailNodeInput): Promise<StateResult> {
  return transition(db, pipelineId, nodeId, (node) => {
    const sameJob = storedJob(node) === jobId;
    const stored = storedAttempt(node);
    const current = sameJob && ((node.status === "queued" && (final || attempt >= stored)) || (node.status === "in_progress" && (final || attempt === stored)));
    if (current) {
      return {
        kind: "apply",
        set: `status = 'failed',
              metadata = ${META} || jsonb_build_object('error', $4::text, 'completedAt', ${NOW_ISO})`,
        guard: `status = $5 AND metadata ->> 'jobId' = $3`,
        params: [jobId, error, node.status satisfies NodeStatus],
      };
    }
    if (node.status === "failed" && sameJob) return { kind: "already" };
    return {
      kind: "reject",
      code: "stale",
      reason: `Failure of attempt ${attempt} of job ${jobId} rejected: the node is at ${describe(node)}`,
    };
  });
}

export interface RecordProviderJobInput {
  pipelineId: string;
  nodeId: string;
  jobId: string;
  attempt: number;
  provider: string;
  phase: ProviderJobPhase;
  providerJobId?: string;
  clientRef?: string;
  estimatedCost?: number;
}

type ProviderJobPhase = "local" | "creating" | "created" | "refused";

interface StoredProviderJob {
  provider?: unknown;
  phase?: unknown;
  id?: unknown;
  clientRef?: unknown;
  attempt?: unknown;
}

/**
 * Records what an AI executor is about to pay for or has paid for, while the node is in_progress for this job
 * at this attempt (a superseded attempt is rejected as stale). Writes metadata.provider, metadata.providerJob
 * ({ provider, phase, id, clientRef, attempt, at }), metadata.providerJobId once known, and
 * metadata.estimatedCost when given; all through `||`.
 *
 * Never pay twice: once a providerJobId is recorded for the job it is never replaced or cleared. Recording the
 * same id again is "already" (a caller that lost the reply asks again); a different id, or "creating"/"refused"
 * after an id exists, is a conflict: the caller must resume the recorded job instead of creating another.
 */
export function recordProviderJob(db: Queryable, input: RecordProviderJobInput): Promise<StateResult> {
  const { pipelineId, nodeId, jobId, attempt, provider, phase, providerJobId, clientRef, estimatedCost } = input;
  return transition(db, pipelineId, nodeId, (node) => {
    if (!holds(node, jobId, attempt)) {
      return {
        kind: "reject",
        code: "stale",
        reason: `Provider job of attempt ${attempt} of job ${jobId} not recorded: the node is at ${describe(node)}`,
      };
    }
    if (phase === "created" && !providerJobId) {
      return { kind: "reject", code: "conflict", reason: "a created provider job needs its providerJobId" };
    }
    const recordedId = typeof node.metadata?.providerJobId === "string" ? node.metadata.providerJobId : undefined;
    const current = (node.metadata?.providerJob ?? {}) as StoredProviderJob;
    if (recordedId !== undefined) {
      if (phase === "created" && providerJobId === recordedId && current.provider === provider) return { kind: "already" };
      return {
        kind: "reject",
        code: "conflict",
        reason: `job ${jobId} already has ${String(current.provider)} job ${recordedId}; resume it instead of creating another`,
      };
    }
    if (current.phase === phase && current.provider === provider && current.attempt === attempt && phase !== "created") {
      return { kind: "already" };
    }
    const entry: Record<string, unknown> = { provider, phase, attempt };
    if (providerJobId !== undefined) entry.id = providerJobId;
    if (clientRef !== undefined) entry.clientRef = clientRef;
    const patch: Record<string, unknown> = { provider, providerJob: entry };
    if (providerJobId !== undefined) patch.providerJobId = providerJobId;
    if (estimatedCost !== undefined) patch.estimatedCost = estimatedCost;
    return {
      kind: "apply",
      set: `metadata = ${META} || $5::jsonb || jsonb_build_object('providerJob', $6::jsonb || jsonb_build_object('at', ${NOW_ISO}))`,
      guard: `${HOLDER_GUARD} AND NOT (${META} ? 'providerJobId')`,
      params: [jobId, attempt, JSON.stringify(patch), JSON.stringify(entry)],
    };
  });
}

/** Generic partial write: metadata = COALESCE(metadata, '{}') || patch (state_version + 1). */
export function patchNodeMetadata(db: Queryable, pipelineId: string, nodeId: string, patch: Record<string, unknown>): Promise<StateResult> {
  return transition(db, pipelineId, nodeId, () => ({
    kind: "apply",
    set: `metadata = ${META} || $3::jsonb`,
    guard: "true",
    params: [JSON.stringify(patch)],
  }));
}

export interface CancelNodeInput {
  pipelineId: string;
  nodeId: string;
  /** Why, shown as metadata.error ("upstream <id> failed", "cancelled by <who>"). */
  reason: string;
  /** Who or what cancelled (a run id, "user"). */
  by: string;
  runId?: string;
  /** Also in_progress -> cancelled (a user's cancel: the executor is told to stop; its late result is rejected). */
  running?: boolean;
}

/**
 * pending / queued (and, with `running`, in_progress) -> cancelled with metadata.error = reason, cancelledAt and cancelledBy (a queued job's
 * executor then finds the node not queued for it and never starts). Already cancelled -> "already"; a node
 * that is running or done is not cancelled here (rejected with its status).
 */
export function cancelNode(db: Queryable, { pipelineId, nodeId, reason, by, runId, running }: CancelNodeInput): Promise<StateResult> {
  return transition(db, pipelineId, nodeId, (node) => {
    if (node.status === "pending" || node.status === "queued" || (running && node.status === "in_progress")) {
      return {
        kind: "apply",
        set: `status = 'cancelled',
              metadata = ${META} || jsonb_build_object('error', $3::text, 'cancelledAt', ${NOW_ISO}, 'cancelledBy', $4::text)
                         || jsonb_strip_nulls(jsonb_build_object('runId', $6::text))`,
        guard: `status = $5`,
        params: [reason, by, node.status, runId ?? null],
      };
    }
    if (node.status === "cancelled") return { kind: "already" };
    return { kind: "reject", code: "not_ready", reason: `Node cannot be cancelled (status: ${node.status})` };
  });
}

/**
 * failed / cancelled -> pending, so a run (or a retry) can claim the node again. The previous attempt's
 * status, error, jobId and time are appended to metadata.history; error, cancellation and progress fields
 * are dropped. Already pending -> "already".
 */
export function resetNode(db: Queryable, { pipelineId, nodeId, stale }: { pipelineId: string; nodeId: string; stale?: boolean }): Promise<StateResult> {
  return transition(db, pipelineId, nodeId, (node) => {
    if (stale && node.status === "completed") {
      // Its key moved: the previous result is kept in history (key, file, cost), the output cleared.
      return {
        kind: "apply",
        set: `status = 'pending',
              output = NULL,
              metadata = (${META} - '${DROPPED_ON_NEW_JOB}'::text[] - 'cost')
                         || jsonb_build_object('history', COALESCE(metadata -> 'history', '[]'::jsonb) || jsonb_build_array(
                              jsonb_build_object('status', status, 'reason', 'stale', 'jobId', metadata -> 'jobId', 'runId', metadata -> 'runId',
                                                 'cacheKey', metadata -> 'cacheKey', 's3Key', output -> 's3Key', 'cost', metadata -> 'cost',
                                                 'at', ${NOW_ISO})))`,
        guard: `status = 'completed'`,
        params: [],
      };
    }
    if (node.status === "failed" || node.status === "cancelled") {
      return {
        kind: "apply",
        set: `status = 'pending',
              metadata = (${META} - '{error,cancelledAt,cancelledBy,progress,completedAt}'::text[])
                         || jsonb_build_object('history', COALESCE(metadata -> 'history', '[]'::jsonb) || jsonb_build_array(
                              jsonb_build_object('status', status, 'error', metadata -> 'error', 'jobId', metadata -> 'jobId',
                                                 'runId', metadata -> 'runId', 'at', ${NOW_ISO})))`,
        guard: `status = $3`,
        params: [node.status],
      };
    }
    if (node.status === "pending") return { kind: "already" };
    return { kind: "reject", code: "not_ready", reason: `Node cannot be reset (status: ${node.status})` };
  });
}
