import type { StateEvent } from "@vp/contracts";
import { assertNever } from "@vp/contracts";
import { completeNode, failNode, recordHeartbeat, recordProgress, type Queryable, type StateResult } from "@vp/db";
import type { ConsumeContext } from "@vp/bus";
import { isApplied, type KeyedQueue, type PublishCommitted } from "./committed";

export function eventIdOf(event: StateEvent): string {
  switch (event.kind) {
    case "progress":
      return `${event.jobId}:progress:${event.attempt}:${Math.round(event.percent)}`;
    case "completed":
      return `${event.jobId}:completed`;
    case "failed":
      return `${event.jobId}:failed`;
    case "heartbeat":
      return `${event.jobId}:heartbeat:${event.attempt}:${event.at}`;
    default:
      return assertNever(event, "state event");
  }
}

/**
 * Applies one executor fact (VP_STATE) as a guarded transition and publishes what got committed.
 * A fact that no longer applies (a superseded attempt's late result, progress after completion) is logged
 * and acknowledged: retrying it could never succeed.
 */
export function createApplyStateEvent(deps: { db: Queryable; publishCommitted: PublishCommitted; queue: KeyedQueue }) {
  const { db, publishCommitted, queue } = deps;
  return async (event: StateEvent, ctx: Pick<ConsumeContext, "logger">): Promise<void> => {
    const ids = { pipelineId: event.pipelineId, nodeId: event.nodeId, jobId: event.jobId, attempt: event.attempt };
    if (event.kind === "heartbeat") {
      // Liveness only: stored for the scheduler's reconciler, not published (it changes nothing a user sees).
      const result = await recordHeartbeat(db, ids);
      if (!isApplied(result)) ctx.logger.debug({ ...ids, code: result.code, reason: result.reason }, "heartbeat ignored");
      return;
    }
    await queue(event.pipelineId, async () => {
      let result: StateResult;
      switch (event.kind) {
        case "progress":
          result = await recordProgress(db, { ...ids, percent: event.percent });
          break;
        case "completed":
          result = await completeNode(db, { ...ids, output: event.output, cost: event.cost });
          break;
        case "failed":
          result = await failNode(db, { ...ids, error: event.error, final: event.final ?? false });
          break;
        default:
          return assertNever(event, "state event");
      }
      if (isApplied(result)) {
        await publishCommitted(result.node, result.pipelineMetadata, eventIdOf(event));
        if (event.kind !== "progress") ctx.logger.info({ ...ids, status: result.node.status, outcome: result.outcome }, "state committed");
      } else if (event.kind === "progress") {
        ctx.logger.debug({ ...ids, code: result.code, reason: result.reason }, "progress tick ignored");
      } else {
        ctx.logger.warn({ ...ids, kind: event.kind, code: result.code, reason: result.reason }, "late or stale result rejected");
      }
    });
  };
}
