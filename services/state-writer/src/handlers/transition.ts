import { assertNever, type TransitionReply, type TransitionRequest } from "@vp/contracts";
import { cancelNode, claimQueued, claimRunning, completeFromCache, recordProviderJob, resetNode, toSerializedNode, type Queryable, type StateResult } from "@vp/db";
import { isApplied, type KeyedQueue, type PublishCommitted } from "./committed";

/**
 * Answers guarded transitions that must be decided before money is spent: the scheduler's claim
 * (pending -> queued), an executor's claim (queued -> in_progress), an AI executor's record of the paid
 * provider job it is creating or polling, and a run's cancel (pending/queued -> cancelled) and reset
 * (failed/cancelled -> pending). All are idempotent for the same job, so a caller that lost the reply
 * can simply ask again.
 */
export function createTransitionHandler(deps: { db: Queryable; publishCommitted: PublishCommitted; queue: KeyedQueue }) {
  const { db, publishCommitted, queue } = deps;
  return (req: TransitionRequest): Promise<TransitionReply> =>
    queue(req.pipelineId, async () => {
      let result: StateResult;
      let eventId: string;
      switch (req.kind) {
        case "claim-queued":
          result = await claimQueued(db, req);
          eventId = `${req.jobId}:queued`;
          break;
        case "claim-running":
          result = await claimRunning(db, req);
          eventId = `${req.jobId}:running:${req.attempt}`;
          break;
        case "cancel":
          result = await cancelNode(db, req);
          eventId = `${req.requestId}:${req.nodeId}:cancelled`;
          break;
        case "complete-from-cache":
          result = await completeFromCache(db, req);
          eventId = `${req.jobId}:cached`;
          break;
        case "reset":
          result = await resetNode(db, req);
          eventId = `${req.requestId}:${req.nodeId}:${req.stale ? "stale" : "reset"}`;
          break;
        case "record-provider-job":
          result = await recordProviderJob(db, req);
          eventId = `${req.jobId}:provider:${req.attempt}:${req.phase}`;
          break;
        default:
          return assertNever(req, "transition request");
      }
      if (isApplied(result)) {
        await publishCommitted(result.node, result.pipelineMetadata, eventId);
        return { ok: true, node: toSerializedNode(result.node) };
      }
      return {
        ok: false,
        code: result.code ?? "not_ready",
        reason: result.reason ?? "transition refused",
        ...(result.node ? { node: toSerializedNode(result.node) } : {}),
      };
    });
}
