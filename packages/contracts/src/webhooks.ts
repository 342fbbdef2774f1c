import { z } from "zod";

/**
 * Every webhook event type. batch.finished and row.finished are reserved for batches (the database accepts them
 * already); endpoints may subscribe only to DELIVERED_WEBHOOK_EVENTS.
 */
export const WEBHOOK_EVENT_TYPES = ["run.finished", "node.failed", "batch.finished", "row.finished"] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** The event types the gateway delivers. */
export const DELIVERED_WEBHOOK_EVENTS = ["run.finished", "node.failed"] as const satisfies readonly WebhookEventType[];
export type DeliveredWebhookEvent = (typeof DELIVERED_WEBHOOK_EVENTS)[number];

/** A run of the pipeline completed, failed or was cancelled. `run` is the run as GET .../runs shows it. */
export const RunFinishedWebhook = z.object({
  type: z.literal("run.finished"),
  /** When the run finished (ISO 8601). */
  timestamp: z.string(),
  data: z.object({
    pipeline_id: z.string(),
    run: z.object({
      id: z.string(),
      pipeline_id: z.string(),
      kind: z.enum(["all", "upstream", "retry"]),
      target_node_id: z.string().nullable(),
      node_ids: z.array(z.string()),
      status: z.enum(["completed", "failed", "cancelled"]),
      metadata: z.record(z.string(), z.unknown()),
      created_at: z.string(),
      finished_at: z.string(),
    }),
  }),
});
export type RunFinishedWebhook = z.infer<typeof RunFinishedWebhook>;

/** A node of the pipeline ended failed (each failure once: a retried node that fails again is a new event). */
export const NodeFailedWebhook = z.object({
  type: z.literal("node.failed"),
  /** When the node failed (ISO 8601). */
  timestamp: z.string(),
  data: z.object({
    pipeline_id: z.string(),
    node_id: z.string(),
    node_type: z.string(),
    title: z.string(),
    /** The node's metadata.error: why it failed. */
    error: z.string().nullable(),
    job_id: z.string().nullable(),
    run_id: z.string().nullable(),
    failed_at: z.string(),
  }),
});
export type NodeFailedWebhook = z.infer<typeof NodeFailedWebhook>;

/** The JSON body of a delivery: `{ type, timestamp, data }` (Standard Webhooks). */
export const WebhookPayload = z.discriminatedUnion("type", [RunFinishedWebhook, NodeFailedWebhook]);
export type WebhookPayload = z.infer<typeof WebhookPayload>;
