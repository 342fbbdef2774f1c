import { type Queryable, withTransaction } from "./connection";
import { DbError, NotFoundError } from "./errors";
import type { RunRow } from "./runs";

/**
 * Webhooks (video_production_webhook_endpoints, _deliveries, _attempts), all written by the gateway as the editor
 * role. Finished runs and failed nodes are only read: findUndeliveredEvents turns them into candidates, and
 * insertWebhookDeliveries stores one delivery per endpoint and event (a unique key, so a restart or a second gateway
 * never makes two). Deliveries are claimed with FOR UPDATE SKIP LOCKED, so two gateways never send the same one at
 * once, and every attempt is recorded, also one a stopped gateway could not finish.
 */

/** An endpoint as the API shows it: never its secret. */
export interface WebhookEndpoint {
  id: string;
  pipeline_id: string;
  url: string;
  events: string[];
  created_by: string;
  created_at: string;
}

interface EndpointRow {
  id: string;
  pipeline_id: string;
  url: string;
  events: string[];
  created_by: string;
  created_at: Date;
}

const ENDPOINT_COLUMNS = "id, pipeline_id, url, events, created_by, created_at";

const toEndpoint = (row: EndpointRow): WebhookEndpoint => ({ ...row, created_at: row.created_at.toISOString() });

/** A pipeline has as many webhook endpoints as it may; nothing was written. */
export class WebhookLimitError extends DbError {
  constructor(
    message: string,
    readonly max: number,
  ) {
    super(message);
    this.name = "WebhookLimitError";
  }
}

export interface NewWebhookEndpoint {
  id: string;
  pipelineId: string;
  url: string;
  events: readonly string[];
  /** The signing secret, encrypted by the gateway (AES-256-GCM). */
  secretCiphertext: Uint8Array;
  createdBy: string;
  /** Most endpoints one pipeline may have; past it nothing is written (WebhookLimitError). */
  maxPerPipeline: number;
}

/** Stores an endpoint (editor role). NotFoundError when the pipeline does not exist. */
export function createWebhookEndpoint(db: Queryable, input: NewWebhookEndpoint): Promise<WebhookEndpoint> {
  return withTransaction(db, async (tx) => {
    // Serialises creations per pipeline, so the count below cannot be raced past the limit.
    await tx.query(`SELECT pg_advisory_xact_lock(hashtext('vp.webhook-endpoints:' || $1))`, [input.pipelineId]);
    const { rows: found } = await tx.query<{ count: string }>(
      `SELECT (SELECT count(*) FROM video_production_webhook_endpoints WHERE pipeline_id = $1) AS count
       FROM video_production_pipelines WHERE id = $1`,
      [input.pipelineId],
    );
    if (!found[0]) throw new NotFoundError("Pipeline not found");
    const count = Number(found[0].count);
    if (count >= input.maxPerPipeline) {
      throw new WebhookLimitError(
        `This pipeline already has ${count} webhook endpoints, the most one pipeline may have (${input.maxPerPipeline}); delete one first`,
        input.maxPerPipeline,
      );
    }
    const { rows } = await tx.query<EndpointRow>(
      `INSERT INTO video_production_webhook_endpoints (id, pipeline_id, url, events, secret_ciphertext, created_by)
       VALUES ($1, $2, $3, $4::varchar[], $5, $6) RETURNING ${ENDPOINT_COLUMNS}`,
      [input.id, input.pipelineId, input.url, input.events, Buffer.from(input.secretCiphertext), input.createdBy],
    );
    return toEndpoint(rows[0]!);
  });
}

/** A pipeline's endpoints, oldest first. */
export async function listWebhookEndpoints(db: Queryable, pipelineId: string): Promise<WebhookEndpoint[]> {
  const { rows } = await db.query<EndpointRow>(
    `SELECT ${ENDPOINT_COLUMNS} FROM video_production_webhook_endpoints WHERE pipeline_id = $1 ORDER BY created_at, id`,
    [pipelineId],
  );
  return rows.map(toEndpoint);
}

export async function getWebhookEndpoint(db: Queryable, pipelineId: string, id: string): Promise<WebhookEndpoint | null> {
  const { rows } = await db.query<EndpointRow>(`SELECT ${ENDPOINT_COLUMNS} FROM video_production_webhook_endpoints WHERE pipeline_id = $1 AND id = $2`, [
    pipelineId,
    id,
  ]);
  return rows[0] ? toEndpoint(rows[0]) : null;
}

/** Deletes an endpoint with its deliveries and their log; false when it did not exist. */
export async function deleteWebhookEndpoint(db: Queryable, pipelineId: string, id: string): Promise<boolean> {
  const { rowCount } = await db.query(`DELETE FROM video_production_webhook_endpoints WHERE pipeline_id = $1 AND id = $2`, [pipelineId, id]);
  return (rowCount ?? 0) > 0;
}

// ---------------------------------------------------------------------------------------------------
// Events -> deliveries

/** A finished run an endpoint wants and has no delivery for yet. */
export interface RunEventCandidate {
  endpointId: string;
  run: RunRow;
}

/** A failed node an endpoint wants and has no delivery for yet. */
export interface NodeFailureCandidate {
  endpointId: string;
  pipelineId: string;
  nodeId: string;
  nodeType: string;
  title: string;
  metadata: Record<string, unknown>;
  /** metadata.completedAt: when it failed. */
  failedAt: string;
}

/** The delivery key of an event, unique per endpoint. */
export const runEventKey = (runId: string) => `run:${runId}`;
export const nodeFailureKey = (nodeId: string, metadata: Record<string, unknown>) =>
  `node:${nodeId}:${typeof metadata.jobId === "string" ? metadata.jobId : String(metadata.completedAt)}`;

/**
 * How far behind the last scan an endpoint's scan_from trails: an event is stamped inside the transaction that
 * records it (finished_at, metadata.completedAt) and seen once that transaction commits, which can be a little later.
 */
export const WEBHOOK_SCAN_MARGIN_MS = 10 * 60_000;

/** Advisory lock key of the event scan: one gateway scans at a time (deliveries stay unique without it). */
const SCAN_LOCK = 7_361_294_400;

export interface EventScan {
  runs: RunEventCandidate[];
  nodes: NodeFailureCandidate[];
  /** When the scan started (the database's clock); scan_from may move up to this minus the margin once all were stored. */
  startedAt: Date;
  /** Fewer candidates than the limit of each kind: everything there was has been found. */
  complete: boolean;
}

/**
 * Runs to the end of `fn` holding the scan lock, or returns null at once when another gateway holds it. `fn` gets the
 * transaction's client: its reads and writes commit together.
 */
export function withWebhookScanLock<T>(db: Queryable, fn: (tx: Queryable) => Promise<T>): Promise<T | null> {
  return withTransaction(db, async (tx) => {
    const { rows } = await tx.query<{ locked: boolean }>(`SELECT pg_try_advisory_xact_lock($1) AS locked`, [SCAN_LOCK]);
    return rows[0]?.locked ? fn(tx) : null;
  });
}

/** Finished runs and failed nodes since each endpoint's scan_from that the endpoint wants and has no delivery for. */
export async function findUndeliveredEvents(db: Queryable, { limit = 500 }: { limit?: number } = {}): Promise<EventScan> {
  const { rows: clock } = await db.query<{ now: Date }>(`SELECT clock_timestamp() AS now`);
  const { rows: runs } = await db.query<RunRow & { endpoint_id: string }>(
    `SELECT e.id AS endpoint_id, r.id, r.pipeline_id, r.kind, r.target_node_id, r.node_ids, r.status, r.metadata, r.created_at, r.finished_at
     FROM video_production_webhook_endpoints e
     JOIN video_production_runs r ON r.pipeline_id = e.pipeline_id
     WHERE 'run.finished' = ANY (e.events) AND r.status <> 'running' AND r.finished_at >= e.scan_from
       AND NOT EXISTS (SELECT 1 FROM video_production_webhook_deliveries d WHERE d.endpoint_id = e.id AND d.event_key = 'run:' || r.id)
     ORDER BY r.finished_at LIMIT $1`,
    [limit],
  );
  const { rows: nodes } = await db.query<{
    endpoint_id: string;
    pipeline_id: string;
    id: string;
    type: string;
    title: string;
    metadata: Record<string, unknown>;
    failed_at: Date;
  }>(
    `SELECT endpoint_id, pipeline_id, id, type, title, metadata, failed_at FROM (
       SELECT e.id AS endpoint_id, e.scan_from, n.pipeline_id, n.id, n.type, n.title, n.metadata,
              CASE WHEN n.metadata ->> 'completedAt' ~ '^\\d{4}-\\d{2}-\\d{2}T' THEN (n.metadata ->> 'completedAt')::timestamptz END AS failed_at
       FROM video_production_webhook_endpoints e
       JOIN video_production_nodes n ON n.pipeline_id = e.pipeline_id AND n.status = 'failed'
       WHERE 'node.failed' = ANY (e.events)) f
     WHERE failed_at >= scan_from
       AND NOT EXISTS (SELECT 1 FROM video_production_webhook_deliveries d
                       WHERE d.endpoint_id = f.endpoint_id AND d.event_key = 'node:' || f.id || ':' || COALESCE(f.metadata ->> 'jobId', f.metadata ->> 'completedAt'))
     ORDER BY failed_at LIMIT $1`,
    [limit],
  );
  return {
    runs: runs.map(({ endpoint_id, ...run }) => ({ endpointId: endpoint_id, run })),
    nodes: nodes.map((n) => ({
      endpointId: n.endpoint_id,
      pipelineId: n.pipeline_id,
      nodeId: n.id,
      nodeType: n.type,
      title: n.title,
      metadata: n.metadata,
      failedAt: n.failed_at.toISOString(),
    })),
    startedAt: clock[0]!.now,
    complete: runs.length < limit && nodes.length < limit,
  };
}

export interface NewWebhookDelivery {
  id: string;
  endpointId: string;
  pipelineId: string;
  eventType: string;
  eventKey: string;
  payload: unknown;
}

/** Stores deliveries due now; one that exists for the same endpoint and event is left alone. Returns the ids stored. */
export async function insertWebhookDeliveries(db: Queryable, deliveries: readonly NewWebhookDelivery[]): Promise<string[]> {
  if (!deliveries.length) return [];
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO video_production_webhook_deliveries (id, endpoint_id, pipeline_id, event_type, event_key, payload, next_attempt_at)
     SELECT x.id, x.endpoint_id, x.pipeline_id, x.event_type, x.event_key, x.payload, clock_timestamp()
     FROM jsonb_to_recordset($1::jsonb) AS x(id varchar, endpoint_id varchar, pipeline_id varchar, event_type varchar, event_key varchar, payload jsonb)
     -- An endpoint deleted since the scan takes its events with it.
     WHERE EXISTS (SELECT 1 FROM video_production_webhook_endpoints e WHERE e.id = x.endpoint_id)
     ON CONFLICT (endpoint_id, event_key) DO NOTHING
     RETURNING id`,
    [
      JSON.stringify(
        deliveries.map((d) => ({
          id: d.id,
          endpoint_id: d.endpointId,
          pipeline_id: d.pipelineId,
          event_type: d.eventType,
          event_key: d.eventKey,
          payload: d.payload,
        })),
      ),
    ],
  );
  return rows.map((r) => r.id);
}

/**
 * Moves every endpoint's scan_from up to `scanStartedAt` minus the margin, once all it found is stored; only when it
 * moves by more than a minute, so an idle pass writes nothing.
 */
export async function advanceWebhookScan(db: Queryable, scanStartedAt: Date): Promise<void> {
  await db.query(
    `UPDATE video_production_webhook_endpoints SET scan_from = $1::timestamptz - $2 * interval '1 millisecond'
     WHERE scan_from < $1::timestamptz - $2 * interval '1 millisecond' - interval '1 minute'`,
    [scanStartedAt, WEBHOOK_SCAN_MARGIN_MS],
  );
}

// ---------------------------------------------------------------------------------------------------
// Sending

/** A delivery claimed for one attempt, with what sending it takes. */
export interface ClaimedDelivery {
  id: string;
  endpointId: string;
  pipelineId: string;
  eventType: string;
  payload: unknown;
  /** This attempt's number (1 for the first). */
  attempt: number;
  /** The attempt's number within the current retry schedule (1 for its first). */
  scheduleAttempt: number;
  /** A redelivery asked for by hand (the first attempt of a schedule after the first). */
  manual: boolean;
  claim: string;
  url: string;
  secretCiphertext: Buffer;
}

/**
 * Claims up to `limit` due deliveries for one attempt each: their attempt count goes up, and next_attempt_at becomes
 * the claim's expiry (`leaseMs`), after which a delivery whose attempt was never recorded (its gateway stopped) is due
 * again. That lost attempt is logged here, as having no outcome. SKIP LOCKED: concurrent claimers take different rows.
 */
export async function claimDueWebhookDeliveries(db: Queryable, { limit, leaseMs }: { limit: number; leaseMs: number }): Promise<ClaimedDelivery[]> {
  return withTransaction(db, async (tx) => {
    const { rows } = await tx.query<{
      id: string;
      endpoint_id: string;
      pipeline_id: string;
      event_type: string;
      payload: unknown;
      attempts: number;
      schedule_start: number;
      claim: string;
      url: string;
      secret_ciphertext: Buffer;
      lost_attempt: number | null;
      lost_started_at: Date | null;
    }>(
      `WITH due AS (
         SELECT id, claim AS lost_claim, attempts AS lost_attempt, claimed_at AS lost_started_at
         FROM video_production_webhook_deliveries
         WHERE status = 'pending' AND next_attempt_at <= clock_timestamp()
         ORDER BY next_attempt_at LIMIT $1
         FOR UPDATE SKIP LOCKED)
       UPDATE video_production_webhook_deliveries d
       SET attempts = d.attempts + 1, claim = gen_random_uuid(), claimed_at = clock_timestamp(),
           next_attempt_at = clock_timestamp() + $2::double precision * interval '1 millisecond'
       FROM due, video_production_webhook_endpoints e
       WHERE d.id = due.id AND e.id = d.endpoint_id
       RETURNING d.id, d.endpoint_id, d.pipeline_id, d.event_type, d.payload, d.attempts, d.schedule_start, d.claim, e.url, e.secret_ciphertext,
                 CASE WHEN due.lost_claim IS NOT NULL THEN due.lost_attempt END AS lost_attempt, due.lost_started_at`,
      [limit, leaseMs],
    );
    const lost = rows.filter((r) => r.lost_attempt !== null);
    if (lost.length) {
      await tx.query(
        `INSERT INTO video_production_webhook_attempts (delivery_id, attempt, manual, started_at, duration_ms, error)
         SELECT x.delivery_id, x.attempt, x.manual, x.started_at, NULL, $2
         FROM jsonb_to_recordset($1::jsonb) AS x(delivery_id varchar, attempt integer, manual boolean, started_at timestamptz)
         ON CONFLICT DO NOTHING`,
        [
          JSON.stringify(
            lost.map((r) => ({
              delivery_id: r.id,
              attempt: r.lost_attempt,
              manual: isManual(r.lost_attempt!, r.schedule_start),
              started_at: r.lost_started_at,
            })),
          ),
          "no outcome recorded: the gateway stopped during this attempt (the receiver may have got it)",
        ],
      );
    }
    return rows.map((r) => ({
      id: r.id,
      endpointId: r.endpoint_id,
      pipelineId: r.pipeline_id,
      eventType: r.event_type,
      payload: r.payload,
      attempt: r.attempts,
      scheduleAttempt: r.attempts - r.schedule_start,
      manual: isManual(r.attempts, r.schedule_start),
      claim: r.claim,
      url: r.url,
      secretCiphertext: r.secret_ciphertext,
    }));
  });
}

const isManual = (attempt: number, scheduleStart: number) => scheduleStart > 0 && attempt === scheduleStart + 1;

export interface WebhookAttemptOutcome {
  deliveryId: string;
  claim: string;
  attempt: number;
  manual: boolean;
  startedAt: Date;
  durationMs: number;
  statusCode?: number;
  responseBody?: string;
  error?: string;
  /** What follows: delivered (a 2xx), another attempt after `retryInMs`, or failed (the schedule ran out). */
  next: { status: "delivered" } | { status: "pending"; retryInMs: number } | { status: "failed" };
}

/**
 * Logs an attempt and moves its delivery on. The delivery changes only while this attempt's claim holds (after the
 * claim expired, another claim may have taken it); the log line is written either way, unless the delivery is gone.
 */
export function recordWebhookAttempt(db: Queryable, outcome: WebhookAttemptOutcome): Promise<boolean> {
  return withTransaction(db, async (tx) => {
    await tx.query(
      `INSERT INTO video_production_webhook_attempts (delivery_id, attempt, manual, started_at, duration_ms, status_code, response_body, error)
       SELECT $1::varchar, $2::integer, $3::boolean, $4::timestamptz, $5::integer, $6::integer, $7::varchar, $8::varchar
       WHERE EXISTS (SELECT 1 FROM video_production_webhook_deliveries WHERE id = $1::varchar)
       ON CONFLICT DO NOTHING`,
      [
        outcome.deliveryId,
        outcome.attempt,
        outcome.manual,
        outcome.startedAt,
        Math.round(outcome.durationMs),
        outcome.statusCode ?? null,
        outcome.responseBody ?? null,
        outcome.error ?? null,
      ],
    );
    const { next } = outcome;
    const { rowCount } = await tx.query(
      `UPDATE video_production_webhook_deliveries
       SET status = $3::varchar, claim = NULL,
           next_attempt_at = CASE WHEN $3::varchar = 'pending' THEN clock_timestamp() + $4::double precision * interval '1 millisecond' END,
           finished_at = CASE WHEN $3::varchar = 'pending' THEN NULL ELSE clock_timestamp() END
       WHERE id = $1 AND claim = $2`,
      [outcome.deliveryId, outcome.claim, next.status, next.status === "pending" ? next.retryInMs : 0],
    );
    return (rowCount ?? 0) > 0;
  });
}

// ---------------------------------------------------------------------------------------------------
// The delivery log

export interface WebhookAttempt {
  attempt: number;
  manual: boolean;
  started_at: string;
  /** null: the gateway stopped during the attempt, so nothing is known of it. */
  duration_ms: number | null;
  status_code: number | null;
  response_body: string | null;
  error: string | null;
}

export interface WebhookDelivery {
  id: string;
  endpoint_id: string;
  event_type: string;
  status: "pending" | "delivered" | "failed";
  attempt_count: number;
  /** When the next attempt is due (pending only; while an attempt is being sent, when it is given up as lost). */
  next_attempt_at: string | null;
  created_at: string;
  finished_at: string | null;
  payload: unknown;
  /** Every attempt, oldest first. */
  attempts: WebhookAttempt[];
}

interface DeliveryRow {
  id: string;
  endpoint_id: string;
  event_type: string;
  status: WebhookDelivery["status"];
  attempts: number;
  next_attempt_at: Date | null;
  created_at: Date;
  finished_at: Date | null;
  payload: unknown;
  log: Array<Omit<WebhookAttempt, "started_at"> & { started_at: string }> | null;
}

const DELIVERY_SELECT = `
  SELECT d.id, d.endpoint_id, d.event_type, d.status, d.attempts, d.next_attempt_at, d.created_at, d.finished_at, d.payload,
         (SELECT jsonb_agg(jsonb_build_object('attempt', a.attempt, 'manual', a.manual, 'started_at', a.started_at, 'duration_ms', a.duration_ms,
                                              'status_code', a.status_code, 'response_body', a.response_body, 'error', a.error) ORDER BY a.attempt)
          FROM video_production_webhook_attempts a WHERE a.delivery_id = d.id) AS log
  FROM video_production_webhook_deliveries d`;

const toDelivery = (r: DeliveryRow): WebhookDelivery => ({
  id: r.id,
  endpoint_id: r.endpoint_id,
  event_type: r.event_type,
  status: r.status,
  attempt_count: r.attempts,
  next_attempt_at: r.status === "pending" ? (r.next_attempt_at?.toISOString() ?? null) : null,
  created_at: r.created_at.toISOString(),
  finished_at: r.finished_at?.toISOString() ?? null,
  payload: r.payload,
  attempts: (r.log ?? []).map((a) => ({ ...a, started_at: new Date(a.started_at).toISOString() })),
});

/** An endpoint's deliveries with their attempts, newest first. */
export async function listWebhookDeliveries(db: Queryable, endpointId: string, { limit = 50 }: { limit?: number } = {}): Promise<WebhookDelivery[]> {
  const { rows } = await db.query<DeliveryRow>(`${DELIVERY_SELECT} WHERE d.endpoint_id = $1 ORDER BY d.created_at DESC, d.id LIMIT $2`, [endpointId, limit]);
  return rows.map(toDelivery);
}

export async function getWebhookDelivery(db: Queryable, endpointId: string, id: string): Promise<WebhookDelivery | null> {
  const { rows } = await db.query<DeliveryRow>(`${DELIVERY_SELECT} WHERE d.endpoint_id = $1 AND d.id = $2`, [endpointId, id]);
  return rows[0] ? toDelivery(rows[0]) : null;
}

/**
 * Queues a delivery (of any status) for an attempt now, starting a new retry schedule. "in_flight" while an attempt is
 * being sent (its claim has not expired): asking again after it is recorded sends it once more.
 */
export async function redeliverWebhook(db: Queryable, endpointId: string, id: string): Promise<WebhookDelivery | "not_found" | "in_flight"> {
  const { rowCount } = await db.query(
    `UPDATE video_production_webhook_deliveries
     SET status = 'pending', next_attempt_at = clock_timestamp(), schedule_start = attempts, finished_at = NULL
     WHERE endpoint_id = $1 AND id = $2 AND NOT (claim IS NOT NULL AND next_attempt_at > clock_timestamp())`,
    [endpointId, id],
  );
  const delivery = await getWebhookDelivery(db, endpointId, id);
  if (!delivery) return "not_found";
  return rowCount ? delivery : "in_flight";
}
