import type { StateEvent } from "@vp/contracts";
import { assertNever, Id } from "@vp/contracts";
import { completeNode, failNode, recordHeartbeat, recordProgress, type Queryable, type StateResult } from "@vp/db";
import type { ConsumeContext, InvalidMessageInfo } from "@vp/bus";
import type { Logger } from "@vp/telemetry";
import { isApplied, type KeyedQueue, type PublishCommitted } from "./committed";
import type { TickQueue } from "./ticks";

/**
 * The committed event's id (Nats-Msg-Id), derived from the fact alone, so a redelivered fact publishes the same id.
 * A progress tick's id has its exact percent: executors send whole percents (the same id as their own message id),
 * and two ticks with different percents are two events (a rounded id made JetStream drop the second as a duplicate).
 */
export function eventIdOf(event: StateEvent): string {
  switch (event.kind) {
    case "progress":
      return `${event.jobId}:progress:${event.attempt}:${event.percent}`;
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
 *
 * Progress ticks go to `ticks` (the single-statement fast path, ordered per node; ticks.ts) when given; without it
 * they are queued with the pipeline's status changes as transactions (recordProgress).
 */
export function createApplyStateEvent(deps: { db: Queryable; publishCommitted: PublishCommitted; queue: KeyedQueue; ticks?: TickQueue }) {
  const { db, publishCommitted, queue, ticks } = deps;
  return async (event: StateEvent, ctx: Pick<ConsumeContext, "logger">): Promise<void> => {
    const ids = { pipelineId: event.pipelineId, nodeId: event.nodeId, jobId: event.jobId, attempt: event.attempt };
    if (event.kind === "progress" && ticks) {
      // Published by the tick queue; answered once the event is acknowledged (a failed publish throws: redelivered).
      const answer = await ticks({ ...ids, percent: event.percent }, eventIdOf(event));
      if (answer.outcome === "rejected") ctx.logger.debug({ ...ids, code: answer.code, reason: answer.reason }, "progress tick ignored");
      else if (answer.outcome === "superseded")
        ctx.logger.debug({ ...ids, percent: event.percent, supersededBy: answer.supersededBy }, "progress tick superseded");
      return;
    }
    if (event.kind === "heartbeat") {
      // Liveness only: stored for the scheduler's reconciler, not published (it changes nothing a user sees).
      const result = await recordHeartbeat(db, ids);
      if (!isApplied(result)) ctx.logger.debug({ ...ids, code: result.code, reason: result.reason }, "heartbeat ignored");
      return;
    }
    const apply = async (tx: Queryable): Promise<StateResult> => {
      switch (event.kind) {
        case "progress":
          return recordProgress(tx, { ...ids, percent: event.percent });
        case "completed":
          return lateCompletion(event, await completeNode(tx, { ...ids, output: event.output, cost: event.cost }));
        case "failed":
          return failNode(tx, { ...ids, error: event.error, final: event.final ?? false });
        default:
          return assertNever(event, "state event");
      }
    };
    await queue(event.pipelineId, apply, async (result) => {
      if (isApplied(result)) {
        // Logged at commit, before the publish: a publish that fails (NATS down) brings the fact back as "already",
        // so each transition has exactly one "applied" line however its publish went.
        if (event.kind !== "progress") ctx.logger.info({ ...ids, status: result.node.status, outcome: result.outcome }, "state committed");
        await publishCommitted(result.node, result.pipelineMetadata, eventIdOf(event));
      } else if (event.kind === "progress") {
        ctx.logger.debug({ ...ids, code: result.code, reason: result.reason }, "progress tick ignored");
      } else {
        ctx.logger.warn({ ...ids, kind: event.kind, code: result.code, reason: result.reason }, "late or stale result rejected");
      }
    });
  };
}

/**
 * completeNode answers "already" for any completion of the job once the node is completed, so that a redelivered
 * fact (the state-writer died between commit and publish) is published again. Only the attempt that completed the
 * node can be that redelivery: a completion from another attempt is a superseded executor's late result (it froze
 * past its ack wait while another took the job over) and is rejected like one, not re-announced as committed.
 */
function lateCompletion(event: StateEvent & { kind: "completed" }, result: StateResult): StateResult {
  const completedBy = Number(result.node?.metadata?.attempt);
  if (result.outcome !== "already" || completedBy === event.attempt) return result;
  return {
    ...result,
    outcome: "rejected",
    code: "stale",
    reason: `Result of attempt ${event.attempt} of job ${event.jobId} rejected: the node is completed at attempt ${completedBy}`,
  };
}

/**
 * A VP_STATE message that is not JSON or fails the schema (terminated by the consume helper, never redelivered).
 * An unreadable result (kind completed or failed, naming its job and attempt) is the only report the node's
 * executor will send for that attempt (it acknowledged its job once the fact was stored), so the node would sit
 * in_progress until the reconciler revived it, only to get the same unreadable report again. It fails now with
 * the reason, visible over SSE, if it is still running that job at that attempt; anything else is a logged
 * rejection with the reason. The subject names the node (`…vp.state.<pipelineId>.<nodeId>`).
 */
export function createRejectInvalidStateEvent(deps: { publishCommitted: PublishCommitted; queue: KeyedQueue }) {
  const { publishCommitted, queue } = deps;
  return async (info: InvalidMessageInfo, logger: Logger): Promise<void> => {
    const [nodeId, pipelineId] = info.subject.split(".").reverse();
    const fact = readableFields(info.raw);
    const ids = { pipelineId, nodeId, jobId: fact.jobId, attempt: fact.attempt };
    const isResult = fact.kind === "completed" || fact.kind === "failed";
    if (!isResult || !fact.jobId || !fact.attempt || !Id.safeParse(pipelineId).success || !Id.safeParse(nodeId).success) {
      logger.error({ ...ids, subject: info.subject, seq: info.seq, kind: fact.kind, reason: info.reason }, "invalid state event rejected");
      return;
    }
    const error = `The executor's ${fact.kind} report for attempt ${fact.attempt} could not be read (${info.reason}); run the node again`;
    const apply = (tx: Queryable) => failNode(tx, { pipelineId: pipelineId!, nodeId: nodeId!, jobId: fact.jobId!, attempt: fact.attempt!, error });
    await queue(pipelineId!, apply, async (result) => {
      if (isApplied(result)) {
        await publishCommitted(result.node, result.pipelineMetadata, `${fact.jobId}:invalid:${info.seq}`);
        logger.error({ ...ids, status: result.node.status, reason: info.reason }, "invalid state event: the node fails");
      } else {
        logger.error(
          { ...ids, subject: info.subject, seq: info.seq, kind: fact.kind, reason: info.reason, code: result.code, state: result.reason },
          "invalid state event rejected",
        );
      }
    });
  };
}

function readableFields(raw: string): { kind?: string; jobId?: string; attempt?: number } {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return {};
  }
  if (!value || typeof value !== "object") return {};
  const { kind, jobId, attempt } = value as Record<string, unknown>;
  return {
    kind: typeof kind === "string" ? kind : undefined,
    jobId: typeof jobId === "string" && jobId.length > 0 ? jobId : undefined,
    attempt: Number.isInteger(attempt) && (attempt as number) >= 1 ? (attempt as number) : undefined,
  };
}
