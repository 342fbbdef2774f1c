import { assertNever, type TransitionReply, type TransitionRequest } from "@vp/contracts";
import {
  cancelNode,
  claimQueued,
  claimRunning,
  completeFromCache,
  recordProviderJob,
  resetNode,
  toSerializedNode,
  type Queryable,
  type StateResult,
} from "@vp/db";
import { isApplied, type KeyedQueue, type PublishCommitted } from "./committed";

/**
 * Answers guarded transitions that must be decided before money is spent: the scheduler's claim
 * (pending -> queued), an executor's claim (queued -> in_progress), an AI executor's record of the paid
 * provider job it is creating or polling, and a run's cancel (pending/queued -> cancelled) and reset
 * (failed/cancelled -> pending). All are idempotent for the same job, so a caller that lost the reply
 * can simply ask again.
 */
export function createTransitionHandler(deps: { publishCommitted: PublishCommitted; queue: KeyedQueue }) {
  const { publishCommitted, queue } = deps;
  return (req: TransitionRequest): Promise<TransitionReply> =>
    queue(
      req.pipelineId,
      (tx) => applyTransition(tx, req),
      async (result) => {
        if (isApplied(result)) {
          await publishCommitted(result.node, result.pipelineMetadata, transitionEventId(req));
          return { ok: true, node: toSerializedNode(result.node) };
        }
        return {
          ok: false,
          code: result.code ?? "not_ready",
          reason: result.reason ?? "transition refused",
          ...(result.node ? { node: toSerializedNode(result.node) } : {}),
        };
      },
    );
}

function applyTransition(tx: Queryable, req: TransitionRequest): Promise<StateResult> {
  switch (req.kind) {
    case "claim-queued":
      return claimQueued(tx, req);
    case "claim-running":
      return claimRunning(tx, req);
    case "cancel":
      return cancelNode(tx, req);
    case "complete-from-cache":
      return completeFromCache(tx, req);
    case "reset":
      return resetNode(tx, req);
    case "record-provider-job":
      return recordProviderJob(tx, req);
    default:
      return assertNever(req, "transition request");
  }
}

/** The committed event's id (Nats-Msg-Id): the same request again publishes the same id. */
export function transitionEventId(req: TransitionRequest): string {
  switch (req.kind) {
    case "claim-queued":
      return `${req.jobId}:queued`;
    case "claim-running":
      return `${req.jobId}:running:${req.attempt}`;
    case "cancel":
      return `${req.requestId}:${req.nodeId}:cancelled`;
    case "complete-from-cache":
      return `${req.jobId}:cached`;
    case "reset":
      return `${req.requestId}:${req.nodeId}:${req.stale ? "stale" : "reset"}`;
    case "record-provider-job":
      return `${req.jobId}:provider:${req.attempt}:${req.phase}`;
    default:
      return assertNever(req, "transition request");
  }
}
