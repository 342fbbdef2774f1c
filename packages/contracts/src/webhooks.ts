import { z } from "zod";

/** Every webhook event type; endpoints may subscribe to DELIVERED_WEBHOOK_EVENTS (today all of them). */
export const WEBHOOK_EVENT_TYPES = ["run.finished", "node.failed", "batch.finished", "row.finished"] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** The event types the gateway delivers. */
export const DELIVERED_WEBHOOK_EVENTS = ["run.finished", "node.failed", "batch.finished", "row.finished"] as const satisfies readonly WebhookEventType[];
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

/** A batch row as its webhook and GET /batches/:id show it (`output.url`: where the row's result is served). */
export const BatchRowWebhookData = z.object({
  index: z.number().int(),
  values: z.record(z.string(), z.union([z.string(), z.number()])),
  status: z.enum(["waiting", "running", "completed", "failed", "cancelled"]),
  pipeline_id: z.string().nullable(),
  run_id: z.string().nullable(),
  cost: z.number().nullable(),
  output: z.object({ url: z.string(), node_id: z.string() }).nullable(),
  error: z.string().nullable(),
});

/** A row of a batch of the pipeline ended (completed, failed or cancelled): once per run of the row. */
export const RowFinishedWebhook = z.object({
  type: z.literal("row.finished"),
  timestamp: z.string(),
  data: z.object({ pipeline_id: z.string(), batch_id: z.string(), row: BatchRowWebhookData }),
});
export type RowFinishedWebhook = z.infer<typeof RowFinishedWebhook>;

/** A batch of the pipeline ended: every row completed, failed or was cancelled. */
export const BatchFinishedWebhook = z.object({
  type: z.literal("batch.finished"),
  timestamp: z.string(),
  data: z.object({
    pipeline_id: z.string(),
    batch: z.object({
      id: z.string(),
      status: z.enum(["completed", "failed", "cancelled"]),
      counts: z.record(z.string(), z.number()),
      cost: z.number(),
      cost_saved: z.number(),
      created_at: z.string(),
      finished_at: z.string(),
    }),
  }),
});
export type BatchFinishedWebhook = z.infer<typeof BatchFinishedWebhook>;

/** The JSON body of a delivery: `{ type, timestamp, data }` (Standard Webhooks). */
export const WebhookPayload = z.discriminatedUnion("type", [RunFinishedWebhook, NodeFailedWebhook, RowFinishedWebhook, BatchFinishedWebhook]);
export type WebhookPayload = z.infer<typeof WebhookPayload>;
