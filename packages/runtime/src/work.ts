import type { JobMessage, NodeMetadata, NodeOutput, ProviderJobPhase, SerializedNode } from "@vp/contracts";
import { outputKey, type Storage } from "@vp/storage";
import type { Logger } from "@vp/telemetry";

/**
 * What the job runner hands to a node type's work function once the node is claimed (in_progress for
 * this job and attempt). The runner owns claiming, heartbeats and publishing the result; a work function
 * only turns inputs into one stored output.
 */
export interface WorkContext {
  job: JobMessage;
  attempt: number;
  node: SerializedNode;
  /** Upstream nodes per input slot, in the order the node's `inputs` lists them. */
  inputs: Record<string, SerializedNode[]>;
  storage: Storage;
  /** A fresh directory owned by this job attempt; the runner deletes it afterwards. */
  workDir: string;
  /** Aborted on cancel, timeout or shutdown: kill child processes and throw. */
  signal: AbortSignal;
  /**
   * Aborted only when the user cancelled the node (not on shutdown or a lost lease): paid provider jobs are then
   * cancelled at the provider where its API allows it, instead of being left for the next attempt to resume.
   */
  cancelled?: AbortSignal;
  /**
   * How long a confirmation that this attempt holds the node stays trustworthy, in ms (a third of the job's ack
   * wait: another delivery can take the node over only after a full ack wait without this attempt's heartbeats).
   * Work that is about to pay checks that its last confirmation is younger than this (a process frozen in between
   * would otherwise act on a stale answer).
   */
  leaseMs?: number;
  /** Percent done, 0-100. The runner throttles what it forwards. */
  progress(percent: number): void;
  logger: Logger;
  /**
   * Records, through the state-writer, the paid provider job this attempt is about to create or has created
   * (committed before it returns). Call it with phase "creating" before the create request and "created" with
   * the provider's id before polling: a redelivered attempt then finds `node.metadata.providerJobId` and resumes
   * instead of paying again. Resolves the node's metadata after the write. Throws SupersededError when a newer
   * attempt holds the node, ProviderJobConflictError when another provider job is already recorded for the job.
   * Always set by the job runner; optional only so hand-built contexts of work that never pays stay valid.
   */
  recordProviderJob?(record: ProviderJobRecord): Promise<NodeMetadata>;
}

export interface ProviderJobRecord {
  provider: string;
  phase: ProviderJobPhase;
  providerJobId?: string;
  clientRef?: string;
  estimatedCost?: number;
}

export interface WorkResult {
  output: NodeOutput;
  /** US dollars this work cost (compute or provider charges). */
  cost: number;
}

export type WorkFunction = (ctx: WorkContext) => Promise<WorkResult>;

/**
 * Where this attempt stores its output: pipelines/<p>/nodes/<n>/<jobId>-a<attempt>/output.<ext>. Per attempt, so a
 * superseded attempt that finishes late (a frozen executor resumed) never overwrites the committed result's bytes.
 */
export function jobOutputKey(ctx: Pick<WorkContext, "job" | "attempt">, ext: string): string {
  return outputKey(ctx.job.pipelineId, ctx.job.nodeId, ctx.job.jobId, ext, ctx.attempt);
}

/**
 * Thrown by a work function when the node's inputs or config make the work impossible (a segment without
 * output, a file that is not media, ffmpeg rejecting the data). No retry can fix it: the node fails at
 * once with this message.
 */
export class WorkInputError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "WorkInputError";
  }
}

/**
 * A newer attempt of the same job holds the node (this one was frozen or too slow): stop without reporting.
 * The job runner logs it and lets the newer attempt finish.
 */
export class SupersededError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "SupersededError";
  }
}

/** The state-writer refused a provider-job record because a different one is already recorded for the job. */
export class ProviderJobConflictError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ProviderJobConflictError";
  }
}
