import type { JobFailed, JobMessage } from "@vp/contracts";
import { findStalledNodes, type Queryable } from "@vp/db";
import type { Logger } from "@vp/telemetry";

export interface ReconcileDeps {
  /** Postgres as vp_reader. */
  db: Queryable;
  /** Publishes a job message (deduplicated by msgId). */
  publishJob(job: JobMessage, msgId: string): Promise<void>;
  /** Publishes a final failure fact for the state-writer. */
  publishFailed(fact: JobFailed): Promise<void>;
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
  return async function reconcileOnce(): Promise<{ revived: number; failed: number }> {
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
    return { revived, failed };
  };
}
