import { Webhook } from "standardwebhooks";
import { claimDueWebhookDeliveries, recordWebhookAttempt, type ClaimedDelivery, type Queryable, type WebhookAttemptOutcome } from "@vp/db";
import type { Logger } from "@vp/telemetry";
import { type Cidr, postToUrl, type Resolver } from "@vp/url-guard";
import { decryptWebhookSecret } from "./secrets";

/** Most bytes of a receiver's answer kept in the delivery log. */
export const MAX_LOGGED_RESPONSE_BYTES = 2048;
const MAX_LOGGED_ERROR_CHARS = 1000;

export interface WebhookSenderDeps {
  /** Postgres as vp_editor. */
  db: Queryable;
  logger: Logger;
  /** WEBHOOK_SECRET_KEY. */
  key: Buffer;
  /** Internal ranges admitted (WEBHOOK_ALLOW_CIDRS); every other internal address is refused when connecting. */
  allow: readonly Cidr[];
  /** Waits before each retry; past the last, the delivery fails. */
  retrySchedule: readonly number[];
  /** Time a receiver has to answer. */
  timeoutMs: number;
  resolver?: Resolver;
}

/** What follows an attempt: delivered on a 2xx; otherwise the next wait of the schedule, or failed past its end. */
export function nextAfter(ok: boolean, scheduleAttempt: number, schedule: readonly number[]): WebhookAttemptOutcome["next"] {
  if (ok) return { status: "delivered" };
  const wait = schedule[scheduleAttempt - 1];
  return wait === undefined ? { status: "failed" } : { status: "pending", retryInMs: wait };
}

/**
 * Sends one claimed delivery, signed per Standard Webhooks (webhook-id: the delivery's id on every attempt;
 * webhook-timestamp: this attempt's time; webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">), and
 * records the attempt. The URL is checked again when connecting (guarded lookup): a name re-pointed at an internal
 * address since the endpoint was created is refused, and that attempt fails like any other.
 */
export async function sendDelivery(deps: WebhookSenderDeps, delivery: ClaimedDelivery): Promise<WebhookAttemptOutcome> {
  const ids = { pipelineId: delivery.pipelineId, endpointId: delivery.endpointId, deliveryId: delivery.id, attempt: delivery.attempt };
  const startedAt = new Date();
  const started = performance.now();
  let statusCode: number | undefined;
  let responseBody: string | undefined;
  let error: string | undefined;
  try {
    const secret = decryptWebhookSecret(deps.key, delivery.endpointId, delivery.secretCiphertext);
    const body = JSON.stringify(delivery.payload);
    const signature = new Webhook(secret).sign(delivery.id, startedAt, body);
    const answer = await postToUrl(delivery.url, body, {
      allow: deps.allow,
      timeoutMs: deps.timeoutMs,
      maxResponseBytes: MAX_LOGGED_RESPONSE_BYTES,
      resolver: deps.resolver,
      headers: {
        "content-type": "application/json",
        "user-agent": "video-pipelines-webhooks/1",
        "webhook-id": delivery.id,
        "webhook-timestamp": String(Math.floor(startedAt.getTime() / 1000)),
        "webhook-signature": signature,
      },
    });
    statusCode = answer.status;
    responseBody = answer.body;
  } catch (caught) {
    error = (caught instanceof Error ? caught.message : String(caught)).slice(0, MAX_LOGGED_ERROR_CHARS);
  }
  const ok = statusCode !== undefined && statusCode >= 200 && statusCode <= 299;
  const outcome: WebhookAttemptOutcome = {
    deliveryId: delivery.id,
    claim: delivery.claim,
    attempt: delivery.attempt,
    manual: delivery.manual,
    startedAt,
    durationMs: performance.now() - started,
    statusCode,
    responseBody,
    error,
    next: nextAfter(ok, delivery.scheduleAttempt, deps.retrySchedule),
  };
  const recorded = await recordWebhookAttempt(deps.db, outcome);
  const fields = { ...ids, event: delivery.eventType, statusCode, error, ms: Math.round(outcome.durationMs), next: outcome.next, recorded };
  if (ok) deps.logger.info(fields, "webhook delivered");
  else if (outcome.next.status === "failed") deps.logger.warn(fields, "webhook delivery failed: no retries left");
  else deps.logger.info(fields, "webhook attempt failed; retrying");
  return outcome;
}

/** Claims up to `limit` due deliveries and sends them concurrently. Returns how many were sent. */
export async function sendDueDeliveries(deps: WebhookSenderDeps, { limit = 10 }: { limit?: number } = {}): Promise<number> {
  // A claim outlives the longest attempt, so a live gateway's attempt is never taken over.
  const claimed = await claimDueWebhookDeliveries(deps.db, { limit, leaseMs: deps.timeoutMs + 30_000 });
  await Promise.all(
    claimed.map((delivery) =>
      sendDelivery(deps, delivery).catch((error: unknown) =>
        // Recording failed (the database went away): the claim expires and the delivery is sent again.
        deps.logger.error(
          { err: error, pipelineId: delivery.pipelineId, endpointId: delivery.endpointId, deliveryId: delivery.id },
          "webhook attempt not recorded",
        ),
      ),
    ),
  );
  return claimed.length;
}
