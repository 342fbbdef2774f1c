import type { JobMessage, TransitionReply } from "@vp/contracts";
import { request, type ConsumeContext } from "@vp/bus";
import type { NodeMetadata } from "@vp/contracts";
import type { ClaimedAttempt } from "./job-attempt";
import type { JobRunnerDeps } from "./job-runner";
import { UNAVAILABLE_WAIT_MS, untilReachable } from "./until-stored";
import { ProviderJobConflictError, SupersededError, type ProviderJobRecord } from "./work";

/**
 * queued -> in_progress for this job and delivery, decided by the state-writer before any work or spending. A
 * state-writer, database or bus that is unavailable is waited out here (see untilReachable), asking again with the
 * same claimId, so an outage uses up no attempt of the job.
 */
export function claimJob(deps: JobRunnerDeps, job: JobMessage, ctx: ConsumeContext, claimId: string): Promise<TransitionReply> {
  const { bus, topology } = deps;
  const claim = () =>
    request(
      bus,
      topology.messages.transition,
      { v: 1, kind: "claim-running", pipelineId: job.pipelineId, nodeId: job.nodeId, jobId: job.jobId, attempt: ctx.attempt, claimId },
      { timeoutMs: deps.claimTimeoutMs ?? 10_000 },
    );
  return untilReachable(claim, ctx.signal, ctx.logger, "claiming the node", deps.unavailableWaitMs ?? UNAVAILABLE_WAIT_MS);
}

/** The work context's recordProviderJob: the record is a transition guarded by this attempt holding the node. */
export function providerJobRecorder(deps: JobRunnerDeps, a: ClaimedAttempt): (record: ProviderJobRecord) => Promise<NodeMetadata> {
  const { bus, topology } = deps;
  const { job, attempt, logger } = a;
  return async (record: ProviderJobRecord) => {
    const reply = await request(
      bus,
      topology.messages.transition,
      { v: 1, kind: "record-provider-job", pipelineId: job.pipelineId, nodeId: job.nodeId, jobId: job.jobId, attempt, ...record },
      { timeoutMs: deps.claimTimeoutMs ?? 10_000 },
    );
    if (reply.ok) {
      logger.info({ provider: record.provider, phase: record.phase, providerJobId: record.providerJobId }, "provider job recorded");
      return reply.node.metadata ?? {};
    }
    if (reply.code === "conflict") throw new ProviderJobConflictError(reply.reason);
    throw new SupersededError(reply.reason);
  };
}
