import { type JobFailed, JobMessage } from "@vp/contracts";
import { NonRetryableError, publish, type InvalidMessageInfo } from "@vp/bus";
import type { Logger } from "@vp/telemetry";
import type { JobRunnerDeps } from "./job-runner";
import { SupersededError, WorkInputError } from "./work";

/** The outcome label (job duration metric) of an attempt whose work or result threw. */
export function failureOutcome(error: unknown, cancelled: AbortSignal, shutdown: AbortSignal): string {
  return cancelled.aborted ? "cancelled" : shutdown.aborted ? "interrupted" : error instanceof SupersededError ? "superseded" : "error";
}

/**
 * What the consume helper is told about an attempt whose work or result threw: returning acknowledges the job,
 * throwing NonRetryableError fails the node, any other throw retries it.
 */
export function settleFailure(error: unknown, cancelled: AbortSignal, logger: Logger): void {
  if (cancelled.aborted) {
    // The node is already cancelled by the state-writer: no result to report, nothing to retry.
    logger.info({ reason: String((cancelled.reason as Error)?.message ?? "cancelled") }, "work cancelled");
    return;
  }
  if (error instanceof WorkInputError) throw new NonRetryableError(error.message, { cause: error });
  if (error instanceof SupersededError) {
    // Same policy as a stale claim: the newer attempt owns the node and reports its result.
    logger.warn({ reason: error.message }, "attempt superseded; stopping without a result");
    return;
  }
  throw error;
}

/** Called by the consume helper when a job will not be retried: the node fails with the reason. */
export async function failJob(deps: JobRunnerDeps, job: JobMessage, reason: string, attempt: number): Promise<void> {
  const { bus, topology } = deps;
  const failed: JobFailed = {
    v: 1,
    kind: "failed",
    pipelineId: job.pipelineId,
    nodeId: job.nodeId,
    jobId: job.jobId,
    attempt,
    error: reason,
    final: true,
    at: new Date().toISOString(),
  };
  await publish(bus, topology.messages.state(job.pipelineId, job.nodeId), failed, {
    msgId: `${job.jobId}:failed`,
  });
}

/**
 * Called by the consume helper for a job message that is not JSON or fails the schema (it is terminated, never
 * redelivered). Its node was claimed (queued) for the job by the scheduler and would wait for it forever, so when
 * the payload still names a pipeline, node and job, the node fails with the reason (visible over SSE). The
 * state-writer applies the failure only to a node queued or running for that job; otherwise it logs the
 * rejection. A payload that names nothing is only logged (by the consume helper, with the reason).
 */
export async function rejectInvalidJob(deps: JobRunnerDeps, info: InvalidMessageInfo, logger: Logger): Promise<void> {
  const { bus, topology } = deps;
  const ids = namedJob(info.raw);
  if (!ids) {
    logger.error({ subject: info.subject, seq: info.seq, reason: info.reason }, "invalid job message names no node; rejected");
    return;
  }
  const failed: JobFailed = {
    v: 1,
    kind: "failed",
    ...ids,
    attempt: 1,
    error: `The job message for this node could not be read (${info.reason}); nothing was run. Run the node again`,
    final: true,
    at: new Date().toISOString(),
  };
  await publish(bus, topology.messages.state(ids.pipelineId, ids.nodeId), failed, { msgId: `${ids.jobId}:invalid:${info.seq}` });
  logger.error({ ...ids, subject: info.subject, seq: info.seq, reason: info.reason }, "invalid job message rejected; its node fails");
}

/** pipelineId, nodeId and jobId of an unreadable job payload, when it still carries them in a usable form. */
function namedJob(raw: string): { pipelineId: string; nodeId: string; jobId: string } | undefined {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return undefined;
  }
  const ids = JobMessage.pick({ pipelineId: true, nodeId: true, jobId: true }).safeParse(value);
  return ids.success ? ids.data : undefined;
}
