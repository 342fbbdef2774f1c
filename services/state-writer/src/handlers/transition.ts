import type { TransitionReply, TransitionRequest } from "@vp/contracts";
import { claimQueued, claimRunning, toSerializedNode, type Queryable, type StateResult } from "@vp/db";
import { isApplied, type KeyedQueue, type PublishCommitted } from "./committed";

/**
 * Answers guarded transitions that must be decided before money is spent: the scheduler's claim
 * (pending -> queued) and an executor's claim (queued -> in_progress). Both are idempotent for the same
 * job, so a caller that lost the reply can simply ask again.
 */
export function createTransitionHandler(deps: { db: Queryable; publishCommitted: PublishCommitted; queue: KeyedQueue }) {
  const { db, publishCommitted, queue } = deps;
  return (req: TransitionRequest): Promise<TransitionReply> =>
    queue(req.pipelineId, async () => {
      let result: StateResult;
      let eventId: string;
      if (req.kind === "claim-queued") {
        result = await claimQueued(db, req);
        eventId = `${req.jobId}:queued`;
      } else {
        result = await claimRunning(db, req);
        eventId = `${req.jobId}:running:${req.attempt}`;
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
