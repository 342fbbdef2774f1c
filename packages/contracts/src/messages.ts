import { z } from "zod";
import { Id } from "./ids";
import { NodeType } from "./catalog";
import { NodeStatus } from "./node-types";
import { CacheKey, NodeMetadata, NodeOutput, SerializedNodeSchema } from "./state";
import { Variable } from "./variables";

/**
 * Every message on the bus. Wire schemas carry `v` and never use `.transform()`.
 * Additive change: no bump. Breaking change: a new `v`.
 */

/** Gateway -> scheduler (VP_COMMANDS): a producer pressed play on one node. */
export const ExecuteCommand = z.object({
  v: z.literal(1),
  /** Tells the commands on VP_COMMANDS apart; SchedulerCommand also reads execute commands stored without it. */
  kind: z.literal("execute"),
  commandId: z.string().min(1),
  /** Chosen by the gateway; becomes metadata.jobId when the claim succeeds. */
  jobId: z.string().min(1),
  pipelineId: Id,
  nodeId: Id,
  requestedAt: z.string(),
});
export type ExecuteCommand = z.infer<typeof ExecuteCommand>;

/** Scheduler -> gateway (core NATS reply to the inbox named in the command's Vp-Reply-To header). */
export const ExecuteVerdict = z.discriminatedUnion("ok", [
  z.object({ ok: z.literal(true), jobId: z.string() }),
  z.object({ ok: z.literal(false), reason: z.string() }),
]);
export type ExecuteVerdict = z.infer<typeof ExecuteVerdict>;

/** Scheduler -> executor (VP_JOBS, subject per node type): do the work of one claimed node. */
export const JobMessage = z.object({
  v: z.literal(1),
  jobId: z.string().min(1),
  pipelineId: Id,
  nodeId: Id,
  type: NodeType,
  dispatchedAt: z.string(),
});
export type JobMessage = z.infer<typeof JobMessage>;

/** Executor -> state-writer (VP_STATE): facts about a running job. */
const StateBase = {
  v: z.literal(1),
  pipelineId: Id,
  nodeId: Id,
  jobId: z.string().min(1),
  /** The delivery attempt that produced the fact; the state-writer rejects facts of superseded attempts. */
  attempt: z.number().int().min(1),
  at: z.string(),
};
export const JobProgress = z.object({ ...StateBase, kind: z.literal("progress"), percent: z.number().min(0).max(100) });
export const JobCompleted = z.object({
  ...StateBase,
  kind: z.literal("completed"),
  output: NodeOutput,
  cost: z.number().nonnegative(),
  /** Seconds the executor spent on the work itself (for orchestration-overhead measurements). */
  workSeconds: z.number().nonnegative().optional(),
});
export const JobFailed = z.object({
  ...StateBase,
  kind: z.literal("failed"),
  error: z.string().min(1),
  /** Final: fail regardless of attempt (given up after the last delivery, or a poison job). */
  final: z.boolean().optional(),
});
/** The executor holding the attempt is alive (sent every third of the ack wait); not published to SSE. */
export const JobHeartbeat = z.object({ ...StateBase, kind: z.literal("heartbeat") });
export type JobHeartbeat = z.infer<typeof JobHeartbeat>;
export const StateEvent = z.discriminatedUnion("kind", [JobProgress, JobCompleted, JobFailed, JobHeartbeat]);
export type JobProgress = z.infer<typeof JobProgress>;
export type JobCompleted = z.infer<typeof JobCompleted>;
export type JobFailed = z.infer<typeof JobFailed>;
export type StateEvent = z.infer<typeof StateEvent>;

/**
 * Guarded transitions that need an answer before money is spent (core NATS request-reply to the
 * state-writer's queue group).
 * - claim-queued: pending -> queued with jobId (scheduler, before dispatch). Idempotent for the same jobId.
 * - claim-running: queued -> in_progress for jobId at `attempt` (executor, before work). A redelivery of the
 *   same job moves `attempt` forward and counts metadata.retries.
 * - record-provider-job: what an AI executor is about to pay for, or has paid for (executor, around a paid
 *   provider's create call). Only the attempt that holds the node may record; the first providerJobId recorded
 *   for a job is never overwritten, so a redelivered attempt finds it and resumes polling instead of paying again.
 */
export const PROVIDER_JOB_PHASES = [
  /** A local provider runs the work on this machine (compute cost only, no provider fee); nothing is created anywhere. */
  "local",
  /** The create request is about to be sent; its outcome is unknown until "created" or "refused". */
  "creating",
  /** The provider accepted the create and returned providerJobId. */
  "created",
  /** The provider definitely created nothing (4xx, 429, 5xx answer, connection refused): creating again is safe. */
  "refused",
] as const;
export const ProviderJobPhase = z.enum(PROVIDER_JOB_PHASES);
export type ProviderJobPhase = z.infer<typeof ProviderJobPhase>;

export const RecordProviderJob = z.object({
  v: z.literal(1),
  kind: z.literal("record-provider-job"),
  pipelineId: Id,
  nodeId: Id,
  jobId: z.string().min(1),
  attempt: z.number().int().min(1),
  /** "heygen", "elevenlabs", "veo3", "runway", "local". */
  provider: z.string().regex(/^[a-z0-9_-]{1,40}$/),
  phase: ProviderJobPhase,
  /** The provider's id of the paid job (HeyGen video_id, Veo operation name, Runway task id, ElevenLabs request-id). */
  providerJobId: z.string().min(1).max(500).optional(),
  /** Our reference sent with the create request (title/callback id), for finding the job after a lost reply. */
  clientRef: z.string().min(1).max(200).optional(),
  /** US dollars, from the price table, before any money is spent. */
  estimatedCost: z.number().nonnegative().optional(),
});
export type RecordProviderJob = z.infer<typeof RecordProviderJob>;

export const TransitionRequest = z.discriminatedUnion("kind", [
  z.object({
    v: z.literal(1),
    kind: z.literal("claim-queued"),
    pipelineId: Id,
    nodeId: Id,
    jobId: z.string().min(1),
    /** The run dispatching the node, recorded as metadata.runId (absent for a single execute). */
    runId: z.string().min(1).optional(),
    /** The node's cache key (packages/flow-graph cache-key), recorded as metadata.cacheKey: its result fills the cache. */
    cacheKey: CacheKey.optional(),
  }),
  /**
   * pending -> completed from the cache entry `cacheKey` (a run found the node's result already made, here or in
   * another pipeline): output copied, metadata.cached / cachedFrom / costSaved, cost 0. Rejected "not_found"
   * when there is no such entry (the caller then claims and dispatches as usual).
   */
  z.object({
    v: z.literal(1),
    kind: z.literal("complete-from-cache"),
    pipelineId: Id,
    nodeId: Id,
    cacheKey: CacheKey,
    jobId: z.string().min(1),
    runId: z.string().min(1),
  }),
  /**
   * pending / queued -> cancelled with metadata.error = reason (a run cancelling a failed node's dependants);
   * with `running`, in_progress -> cancelled too (a user's cancel; the executor is interrupted).
   */
  z.object({
    v: z.literal(1),
    kind: z.literal("cancel"),
    pipelineId: Id,
    nodeId: Id,
    reason: z.string().min(1).max(500),
    /** Who cancelled: a run id or "user". */
    by: z.string().min(1).max(100),
    runId: z.string().min(1).optional(),
    running: z.boolean().optional(),
    /** Stable per decision (the run or the cancel command): the committed event's id derives from it. */
    requestId: z.string().min(1),
  }),
  /**
   * failed / cancelled -> pending, the previous error kept in metadata.history (a run or a retry). With `stale`,
   * completed -> pending too: its config or an input's output changed since it ran (its cache key moved), so a
   * run makes it again; the previous output's key and cache key go to metadata.history.
   */
  z.object({ v: z.literal(1), kind: z.literal("reset"), pipelineId: Id, nodeId: Id, requestId: z.string().min(1), stale: z.boolean().optional() }),
  z.object({
    v: z.literal(1),
    kind: z.literal("claim-running"),
    pipelineId: Id,
    nodeId: Id,
    jobId: z.string().min(1),
    /** JetStream's delivery count (recorded, not trusted for ordering). */
    attempt: z.number().int().min(1),
    /** Unique per delivery: asking again with it is idempotent; another delivery takes the node over. */
    claimId: z.string().min(1).optional(),
  }),
  RecordProviderJob,
]);
export type TransitionRequest = z.infer<typeof TransitionRequest>;

export const TRANSITION_REJECTIONS = ["not_ready", "not_found", "already_done", "stale", "unavailable", "conflict"] as const;
export const TransitionReply = z.discriminatedUnion("ok", [
  z.object({ ok: z.literal(true), node: SerializedNodeSchema }),
  z.object({
    ok: z.literal(false),
    code: z.enum(TRANSITION_REJECTIONS),
    reason: z.string(),
    node: SerializedNodeSchema.optional(),
  }),
]);
export type TransitionReply = z.infer<typeof TransitionReply>;

/**
 * State-writer -> everyone (VP_EVENTS, subject per pipeline): a change that is committed in Postgres.
 * Carries the node's whole execution state, so a consumer that sees it twice or late converges.
 * `stateVersion` grows with every committed write of the node; consumers drop lower versions.
 */
export const NodeChanged = z.object({
  v: z.literal(1),
  kind: z.literal("node"),
  eventId: z.string(),
  pipelineId: Id,
  nodeId: Id,
  type: NodeType,
  status: NodeStatus,
  stateVersion: z.number().int(),
  metadata: NodeMetadata.nullable(),
  output: NodeOutput.nullable(),
  pipelineMetadata: z.record(z.string(), z.unknown()),
  at: z.string(),
});
export type NodeChanged = z.infer<typeof NodeChanged>;
export const CommittedEvent = NodeChanged;
export type CommittedEvent = NodeChanged;

/**
 * Gateway -> gateways (core NATS, `vp.structure.<pipelineId>`, after the write committed): the pipeline's structure
 * changed (`revision`, one higher than the one before). Each node entry is the node as written (null: removed).
 * Not stored: an open editor that sees a revision gap, or reconnects, reloads the structure instead.
 */
export const StructureChanged = z.object({
  v: z.literal(1),
  kind: z.literal("structure"),
  pipelineId: Id,
  revision: z.number().int().positive(),
  /** The subject of who made the change. */
  by: z.string(),
  /** The editor tab that made it (its X-Vp-Client header), so that tab knows the change is its own. */
  client: z.string().optional(),
  at: z.string(),
  /** The pipeline's own fields after the change; `variables` when the change was to them. */
  pipeline: z.object({ title: z.string(), config: z.record(z.string(), z.unknown()), variables: z.array(Variable).optional() }).optional(),
  nodes: z.array(z.object({ id: z.string(), node: SerializedNodeSchema.nullable() })),
});
export type StructureChanged = z.infer<typeof StructureChanged>;

/**
 * Gateway -> scheduler (VP_COMMANDS, `vp.cmd.run`): run every node of the pipeline that is not completed
 * ("run all"), or `targetNodeId` and whatever it needs first ("run to here"). The scheduler answers a
 * RunVerdict on the Vp-Reply-To inbox.
 */
export const RunCommand = z.object({
  v: z.literal(1),
  kind: z.literal("run"),
  commandId: z.string().min(1),
  /** Chosen by the gateway; the run's id (video_production_runs.id). */
  runId: Id,
  pipelineId: Id,
  targetNodeId: Id.optional(),
  /** Retry: targetNodeId must be failed or cancelled; it is reset to pending (history kept) and run. */
  retry: z.boolean().optional(),
  /** With retry: the target's dependants run after it (completed ones again when their inputs changed). */
  downstream: z.boolean().optional(),
  /** Bypass the cache: every member executes (results still refresh the cache). */
  force: z.boolean().optional(),
  requestedAt: z.string(),
});
export type RunCommand = z.infer<typeof RunCommand>;

/**
 * Gateway -> scheduler (VP_COMMANDS, `vp.cmd.cancel`): cancel one node (`nodeId`) or the whole pipeline (every
 * run member not yet done, every queued or running node). Queued nodes never start; running work is
 * interrupted (JobInterrupt). The scheduler answers a CancelVerdict on the Vp-Reply-To inbox.
 */
export const CancelCommand = z.object({
  v: z.literal(1),
  kind: z.literal("cancel"),
  commandId: z.string().min(1),
  pipelineId: Id,
  nodeId: Id.optional(),
  /** Who asked ("user" until there is auth). */
  by: z.string().min(1).max(100),
  requestedAt: z.string(),
});
export type CancelCommand = z.infer<typeof CancelCommand>;

export const CancelVerdict = z.discriminatedUnion("ok", [
  z.object({ ok: z.literal(true), cancelled: z.array(z.string()) }),
  z.object({ ok: z.literal(false), reason: z.string() }),
]);
export type CancelVerdict = z.infer<typeof CancelVerdict>;

/**
 * Scheduler -> executors (core NATS, `vp.interrupt`, every replica): the node was cancelled while its job ran;
 * the replica running `jobId` aborts the work (ffmpeg, Chromium and provider polls stop on the signal). Its late
 * result would be rejected anyway: the node is no longer in_progress.
 */
export const JobInterrupt = z.object({ v: z.literal(1), pipelineId: Id, nodeId: Id, jobId: z.string().min(1), reason: z.string() });
export type JobInterrupt = z.infer<typeof JobInterrupt>;

/**
 * Everything the scheduler consumes from VP_COMMANDS (one consumer, one filter subject on nats-server 2.9), told
 * apart by `kind`. Execute commands stored before they carried a kind have none (run and cancel always had one),
 * so a command without a kind is read as an execute.
 */
export const SchedulerCommand = z.preprocess(withExecuteKind, z.discriminatedUnion("kind", [RunCommand, CancelCommand, ExecuteCommand]));
export type SchedulerCommand = z.output<typeof SchedulerCommand>;

function withExecuteKind(value: unknown): unknown {
  if (value === null || typeof value !== "object" || Array.isArray(value) || "kind" in value) return value;
  return { ...value, kind: "execute" };
}

export const GraphProblem = z.object({ nodeId: z.string(), slot: z.string().optional(), message: z.string() });
export type GraphProblem = z.infer<typeof GraphProblem>;

/** Scheduler -> gateway: the run was recorded and its first nodes dispatched, or why nothing runs. */
/** One member's estimate before a run: what it may cost, and whether the cache already holds its result. */
export const NodeEstimate = z.object({
  nodeId: z.string(),
  /** The node's title, for messages that name it. */
  title: z.string().optional(),
  type: NodeType,
  /** US dollars if it executes (0 for local work and for members found in the cache or up to date). */
  estimatedCost: z.number().nonnegative(),
  /** "execute": will run; "cached": its result is in the cache; "up-to-date": completed and unchanged. */
  source: z.enum(["execute", "cached", "up-to-date"]),
  /** What a cached member cost when it was made (not paid again). */
  costSaved: z.number().nonnegative().optional(),
});
export type NodeEstimate = z.infer<typeof NodeEstimate>;

/** A run's estimate (run metadata.estimate; the budget check compares estimatedTotalCost with maxCost). */
export const RunEstimate = z.object({
  estimatedTotalCost: z.number().nonnegative(),
  /** The pipeline's config.maxCost, null when it has none. */
  maxCost: z.number().nonnegative().nullable(),
  withinBudget: z.boolean(),
  /** Sum of the cached members' costSaved. */
  costSaved: z.number().nonnegative(),
  nodes: z.array(NodeEstimate),
});
export type RunEstimate = z.infer<typeof RunEstimate>;

export const RunVerdict = z.discriminatedUnion("ok", [
  z.object({ ok: z.literal(true), runId: z.string(), nodeIds: z.array(z.string()), estimate: RunEstimate.optional() }),
  z.object({ ok: z.literal(false), reason: z.string(), problems: z.array(GraphProblem).optional(), estimate: RunEstimate.optional() }),
]);
export type RunVerdict = z.infer<typeof RunVerdict>;

/** Scheduler -> state-writer (core NATS request, `vp.rpc.run`): run records are execution state. */
export const RunRequest = z.discriminatedUnion("kind", [
  z.object({
    v: z.literal(1),
    kind: z.literal("create"),
    runId: Id,
    pipelineId: Id,
    runKind: z.enum(["all", "upstream", "retry"]),
    targetNodeId: Id.optional(),
    nodeIds: z.array(Id),
    /** Written to the run's metadata.estimate and the pipeline's metadata.estimatedTotalCost before dispatch. */
    estimate: RunEstimate.optional(),
    /** The run bypasses the cache (metadata.force, read back when a restarted scheduler rebuilds it). */
    force: z.boolean().optional(),
  }),
  z.object({
    v: z.literal(1),
    kind: z.literal("finish"),
    runId: Id,
    status: z.enum(["completed", "failed", "cancelled"]),
    summary: z.record(z.string(), z.unknown()),
  }),
]);
export type RunRequest = z.infer<typeof RunRequest>;

export const RunRecord = z.object({
  id: z.string(),
  pipeline_id: z.string(),
  kind: z.enum(["all", "upstream", "retry"]),
  target_node_id: z.string().nullable(),
  node_ids: z.array(z.string()),
  status: z.enum(["running", "completed", "failed", "cancelled"]),
  metadata: z.record(z.string(), z.unknown()),
  created_at: z.string(),
  finished_at: z.string().nullable(),
});
export type RunRecord = z.infer<typeof RunRecord>;

export const RunReply = z.discriminatedUnion("ok", [z.object({ ok: z.literal(true), run: RunRecord }), z.object({ ok: z.literal(false), reason: z.string() })]);
export type RunReply = z.infer<typeof RunReply>;

/** Header names used on the bus. */
export const HEADERS = {
  /** Core NATS inbox the scheduler answers an execute command on. */
  replyTo: "Vp-Reply-To",
  traceparent: "traceparent",
  tracestate: "tracestate",
} as const;
