import type { JobFailed, JobMessage, NodeType, Topology } from "@vp/contracts";
import type { Bus } from "@vp/bus";
import { findLongQueuedNodes, findStalledNodes, type Queryable } from "@vp/db";
import type { Logger } from "@vp/telemetry";

export interface ReconcileDeps {
  /** Postgres as vp_reader. */
  db: Queryable;
  /** Publishes a job message (deduplicated by msgId). */
  publishJob(job: JobMessage, msgId: string): Promise<void>;
  /** Publishes a final failure fact for the state-writer. */
  publishFailed(fact: JobFailed): Promise<void>;
  /** Job messages of the type waiting for or held by an executor (its consumer's pending + ack pending). */
  jobBacklog(type: NodeType): Promise<number>;
  /** An in_progress node whose heartbeat is older than this is considered abandoned. */
  stalledAfterMs: number;
  /** Attempts after which a node that keeps losing its executor fails instead of being revived again. */
  maxAttempts: number;
  logger: Logger;
}

/**
 * The safety net behind invariant 3 ("a node never stays in_progress after its executor died"):
 * JetStream redelivers an unacknowledged job by itself, but a job message can still be gone while its
 * node is in_progress (acknowledged by a superseded delivery whose successor then died, or lost with a
 * stream). Nodes whose executor stopped heart-beating get their job published again; the next delivery
 * takes the node over with a higher attempt. A node that keeps losing its executor fails with the reason.
 */
export function createReconciler(deps: ReconcileDeps) {
  const requeueLost = requeueLostJobs(deps);
  return async function reconcileOnce(): Promise<{ revived: number; failed: number; requeued: number }> {
    const requeued = await requeueLost();
    const stalled = await findStalledNodes(deps.db, { stalledAfterMs: deps.stalledAfterMs });
    let revived = 0;
    let failed = 0;
    for (const node of stalled) {
      const jobId = typeof node.metadata?.jobId === "string" ? node.metadata.jobId : undefined;
      if (!jobId) continue;
      const attempt = Number(node.metadata?.attempt ?? 0);
      const heartbeatAt = String(node.metadata?.heartbeatAt ?? node.metadata?.startedAt ?? "never");
      const ids = { pipelineId: node.pipeline_id, nodeId: node.id, jobId, attempt, heartbeatAt };
      if (attempt >= deps.maxAttempts) {
        await deps.publishFailed({
          v: 1,
          kind: "failed",
          pipelineId: node.pipeline_id,
          nodeId: node.id,
          jobId,
          attempt: Math.max(1, attempt),
          error: `The executor stopped responding during ${attempt} attempts (last sign of life ${heartbeatAt}); giving up`,
          final: true,
          at: new Date().toISOString(),
        });
        deps.logger.error(ids, "stalled node failed after too many attempts");
        failed += 1;
        continue;
      }
      await deps.publishJob(
        { v: 1, jobId, pipelineId: node.pipeline_id, nodeId: node.id, type: node.type, dispatchedAt: new Date().toISOString() },
        `${jobId}:revive:${heartbeatAt}`,
      );
      deps.logger.warn(ids, "stalled node revived: job published again");
      revived += 1;
    }
    return { revived, failed, requeued };
  };
}

/**
 * The same safety net for queued nodes: a node claimed for a job whose message never reached an executor (lost
 * with a nats-server that was killed before it wrote the message, or never stored) would stay queued forever. A node
 * queued for longer than `stalledAfterMs` while its type has no job message waiting or in flight at all cannot
 * have one: its job is published again (under a new message id; the executor claims the node for the same job).
 * While the type has a backlog, a queued node may just be waiting its turn, and nothing is published.
 */
function requeueLostJobs(deps: ReconcileDeps) {
  return async function requeueOnce(): Promise<number> {
    const queued = await findLongQueuedNodes(deps.db, { queuedForMs: deps.stalledAfterMs });
    const backlogs = new Map<NodeType, number>();
    let requeued = 0;
    for (const node of queued) {
      const jobId = typeof node.metadata?.jobId === "string" ? node.metadata.jobId : undefined;
      if (!jobId) continue;
      if (!backlogs.has(node.type)) backlogs.set(node.type, await deps.jobBacklog(node.type));
      if (backlogs.get(node.type)! > 0) continue;
      const queuedAt = String(node.metadata?.queuedAt ?? "never");
      await deps.publishJob(
        { v: 1, jobId, pipelineId: node.pipeline_id, nodeId: node.id, type: node.type, dispatchedAt: new Date().toISOString() },
        `${jobId}:requeue:${queuedAt}`,
      );
      deps.logger.warn({ pipelineId: node.pipeline_id, nodeId: node.id, jobId, queuedAt }, "queued node had no job message: job published again");
      requeued += 1;
    }
    return requeued;
  };
}

/** jobBacklog from the job consumers' info (pending + ack pending), as KEDA's lag query reads them. */
export function jobBacklogOf(bus: Bus, topology: Topology): (type: NodeType) => Promise<number> {
  return async (type) => {
    const spec = topology.consumers.job(type);
    const info = await bus.jsm.consumers.info(spec.stream, spec.durable);
    return info.num_pending + info.num_ack_pending;
  };
}
