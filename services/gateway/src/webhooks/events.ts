import { randomBytes } from "node:crypto";
import type { NodeFailedWebhook, RunFinishedWebhook } from "@vp/contracts";
import {
  advanceWebhookScan,
  findUndeliveredEvents,
  insertWebhookDeliveries,
  nodeFailureKey,
  runEventKey,
  toSerializedRun,
  withWebhookScanLock,
  type NewWebhookDelivery,
  type NodeFailureCandidate,
  type Queryable,
  type RunEventCandidate,
} from "@vp/db";
import type { Logger } from "@vp/telemetry";

/** A delivery's id, sent as webhook-id: the same on every attempt, so receivers can drop a repeat. */
export const newDeliveryId = () => `msg_${randomBytes(16).toString("hex")}`;

const str = (value: unknown) => (typeof value === "string" ? value : null);

export function runFinishedPayload({ run }: RunEventCandidate): RunFinishedWebhook {
  const serialized = toSerializedRun(run);
  return {
    type: "run.finished",
    timestamp: serialized.finished_at!,
    data: {
      pipeline_id: run.pipeline_id,
      run: { ...serialized, status: run.status as "completed" | "failed" | "cancelled", finished_at: serialized.finished_at! },
    },
  };
}

export function nodeFailedPayload(n: NodeFailureCandidate): NodeFailedWebhook {
  return {
    type: "node.failed",
    timestamp: n.failedAt,
    data: {
      pipeline_id: n.pipelineId,
      node_id: n.nodeId,
      node_type: n.nodeType,
      title: n.title,
      error: str(n.metadata.error),
      job_id: str(n.metadata.jobId),
      run_id: str(n.metadata.runId),
      failed_at: n.failedAt,
    },
  };
}

/**
 * One pass of turning events into deliveries: finished runs and failed nodes that an endpoint wants, happened since it
 * was created and have no delivery yet each get one, due now. Only the gateway holding the scan lock scans; the
 * deliveries' unique key keeps them single anyway. Returns how many were stored (null: another gateway is scanning).
 */
export async function scanWebhookEvents(db: Queryable, logger: Logger): Promise<number | null> {
  return withWebhookScanLock(db, async (tx) => {
    const scan = await findUndeliveredEvents(tx);
    const deliveries: NewWebhookDelivery[] = [
      ...scan.runs.map((c) => ({
        id: newDeliveryId(),
        endpointId: c.endpointId,
        pipelineId: c.run.pipeline_id,
        eventType: "run.finished",
        eventKey: runEventKey(c.run.id),
        payload: runFinishedPayload(c),
      })),
      ...scan.nodes.map((c) => ({
        id: newDeliveryId(),
        endpointId: c.endpointId,
        pipelineId: c.pipelineId,
        eventType: "node.failed",
        eventKey: nodeFailureKey(c.nodeId, c.metadata),
        payload: nodeFailedPayload(c),
      })),
    ];
    const stored = new Set(await insertWebhookDeliveries(tx, deliveries));
    for (const d of deliveries) {
      if (stored.has(d.id))
        logger.info({ pipelineId: d.pipelineId, endpointId: d.endpointId, deliveryId: d.id, event: d.eventType, eventKey: d.eventKey }, "webhook event queued");
    }
    if (scan.complete) await advanceWebhookScan(tx, scan.startedAt);
    return stored.size;
  });
}
