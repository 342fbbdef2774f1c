import type { CancelVerdict, JobInterrupt, JobMessage, RunReply, RunRequest, RunVerdict, TransitionReply, TransitionRequest } from "@vp/contracts";
import type { ConsumeContext } from "@vp/bus";
import type { Queryable } from "@vp/db";
import type { Logger } from "@vp/telemetry";
import { ActiveRuns } from "./active-runs";
import { limitedPerKey } from "./limited-per-key";

export interface RunDeps {
  /** Postgres as vp_reader. */
  db: Queryable;
  /** Run records, written by the state-writer. */
  recordRun(req: RunRequest): Promise<RunReply>;
  /** Guarded node transitions through the state-writer: claim-queued, cancel, reset. */
  transition(req: TransitionRequest): Promise<TransitionReply>;
  /** Publishes a job on its type's subject, deduplicated by jobId. */
  dispatch(job: JobMessage): Promise<void>;
  /** Answers the gateway waiting on the run command (no-op when nobody waits). */
  reply(ctx: ConsumeContext, verdict: RunVerdict): void;
  /** Answers the gateway waiting on a cancel command. */
  replyCancel(ctx: ConsumeContext, verdict: CancelVerdict): void;
  /** Tells every executor replica to abort the work of a cancelled job (core NATS, fire and forget). */
  interrupt(msg: JobInterrupt): void;
  logger: Logger;
}

/**
 * Transitions one pipeline's runs keep in flight at once. A wide run's first wave sent all at once (1,000 claims)
 * queued at the state-writer past the request timeout: the claims that timed out left their members without a job
 * and the run never finished (bench/runs.bench.ts). The state-writer group-commits a pipeline's queued transitions
 * up to STATE_WRITER_BATCH_MAX (default 64) per transaction, so 64 in flight lets one batch take a whole window of
 * claims (with 32 the stack's CPU per node was higher in both of two alternating bench pairs at load 12-19: wide
 * cold 12.6 and 14.6 ms at 32 against 11.9 and 12.8 at 64); other pipelines (applied in parallel by the
 * state-writer) do not wait behind this one.
 */
export const MAX_TRANSITIONS_IN_FLIGHT = 64;

/** What every part of the run coordinator works with: its dependencies, the runs it holds, the limited transitions. */
export interface RunResources {
  deps: RunDeps;
  active: ActiveRuns;
  /** deps.transition with at most MAX_TRANSITIONS_IN_FLIGHT pending per pipeline; every part transitions through it. */
  transition(req: TransitionRequest): Promise<TransitionReply>;
}

export function createRunResources(deps: RunDeps): RunResources {
  return {
    deps,
    active: new ActiveRuns(),
    transition: limitedPerKey(MAX_TRANSITIONS_IN_FLIGHT, (req: TransitionRequest) => req.pipelineId, deps.transition),
  };
}
