import { randomBytes } from "node:crypto";
import { Hono } from "hono";
import { z } from "zod";
import { DELIVERED_WEBHOOK_EVENTS, WEBHOOK_EVENT_TYPES } from "@vp/contracts";
import {
  createWebhookEndpoint,
  deleteWebhookEndpoint,
  getWebhookEndpoint,
  listWebhookDeliveries,
  listWebhookEndpoints,
  redeliverWebhook,
  WebhookLimitError,
} from "@vp/db";
import { logText } from "@vp/telemetry";
import { checkUrlTarget, displayUrl, UrlFetchError, UrlRefusedError } from "@vp/url-guard";
import type { GatewayDeps } from "../deps";
import { HttpError, zodMessage } from "../errors";
import { requirePipeline, type PathParams } from "../pipeline-access";
import { jsonBody, noBody } from "../validation";
import { encryptWebhookSecret, generateWebhookSecret } from "../webhooks/secrets";

/** Most webhook endpoints one pipeline may have. */
export const MAX_WEBHOOKS_PER_PIPELINE = 20;

const ENDPOINT_ID = /^wh_[0-9a-f]{24}$/;
const DELIVERY_ID = /^msg_[0-9a-f]{32}$/;

const RESERVED = WEBHOOK_EVENT_TYPES.filter((type) => !(DELIVERED_WEBHOOK_EVENTS as readonly string[]).includes(type));

export const CreateWebhookBody = z.strictObject({
  /** Where deliveries are POSTed: http or https, no user name or password, not an internal address. */
  url: z.string().min(1).max(2048),
  /** What it wants: run.finished, node.failed, batch.finished, row.finished. */
  events: z
    .array(z.enum(WEBHOOK_EVENT_TYPES))
    .min(1)
    .max(WEBHOOK_EVENT_TYPES.length * 2),
});

const DeliveriesQuery = z.object({ limit: z.coerce.number().int().min(1).max(200).default(50) });

const webhookNotFound = () => new HttpError(404, "Webhook not found");

/** The pipeline and endpoint named by `:pipeline_id` and `:webhook_id`, or a 404 saying which is missing. */
async function requireEndpoint(deps: GatewayDeps, c: PathParams) {
  const pipeline = await requirePipeline(deps.reader, c);
  const id = c.req.param("webhook_id") ?? "";
  const endpoint = ENDPOINT_ID.test(id) ? await getWebhookEndpoint(deps.editor, pipeline.id, id) : null;
  if (!endpoint) throw webhookNotFound();
  return endpoint;
}

/**
 * /pipelines/:pipeline_id/webhooks (editor role, reads included: URLs and answers may carry secrets): POST creates an
 * endpoint and answers its signing secret once; GET lists them; DELETE /:webhook_id removes one with its log;
 * GET /:webhook_id/deliveries is its delivery log; POST .../deliveries/:delivery_id/redeliver sends one again.
 */
export function webhookRoutes(deps: GatewayDeps) {
  const app = new Hono();
  const settings = deps.webhooks;

  app.post("/:pipeline_id/webhooks", async (c) => {
    const pipeline = await requirePipeline(deps.reader, c);
    const body = await jsonBody(c, CreateWebhookBody);
    const events = [...new Set(body.events)];
    const reserved = events.filter((type) => RESERVED.includes(type));
    if (reserved.length) {
      throw new HttpError(
        422,
        `events: ${reserved.join(", ")} ${reserved.length > 1 ? "are" : "is"} reserved and not delivered yet; use ${DELIVERED_WEBHOOK_EVENTS.join(" or ")}`,
      );
    }
    const allow = settings?.allow ?? [];
    let url: URL;
    try {
      url = await checkUrlTarget(body.url, { allow, resolver: settings?.resolver });
    } catch (error) {
      if (error instanceof UrlRefusedError || error instanceof UrlFetchError) {
        throw new HttpError(422, `url: ${error.message}; webhooks are only sent to public addresses${allow.length ? " and WEBHOOK_ALLOW_CIDRS" : ""}`);
      }
      throw error;
    }
    if (!settings?.key) {
      throw new HttpError(
        503,
        "Webhooks are not set up on this gateway: WEBHOOK_SECRET_KEY is not set (32 random bytes, e.g. openssl rand -base64 32; every gateway replica needs the same key)",
      );
    }
    const id = `wh_${randomBytes(12).toString("hex")}`;
    const secret = generateWebhookSecret();
    const principal = c.get("principal");
    let endpoint: Awaited<ReturnType<typeof createWebhookEndpoint>>;
    try {
      endpoint = await createWebhookEndpoint(deps.editor, {
        id,
        pipelineId: pipeline.id,
        url: url.href,
        events,
        secretCiphertext: encryptWebhookSecret(settings.key, id, secret),
        createdBy: principal.subject,
        maxPerPipeline: settings.maxPerPipeline ?? MAX_WEBHOOKS_PER_PIPELINE,
      });
    } catch (error) {
      if (error instanceof WebhookLimitError) throw new HttpError(422, error.message, { limit: "webhooks", max: error.max });
      throw error;
    }
    deps.logger.info(
      { pipelineId: pipeline.id, endpointId: id, url: logText(displayUrl(url)), events, createdBy: logText(principal.subject) },
      "webhook endpoint created",
    );
    return c.json({ webhook: endpoint, secret }, 201);
  });

  app.get("/:pipeline_id/webhooks", async (c) => {
    const pipeline = await requirePipeline(deps.reader, c);
    return c.json({ webhooks: await listWebhookEndpoints(deps.editor, pipeline.id) });
  });

  app.delete("/:pipeline_id/webhooks/:webhook_id", async (c) => {
    const endpoint = await requireEndpoint(deps, c);
    await noBody(c);
    if (!(await deleteWebhookEndpoint(deps.editor, endpoint.pipeline_id, endpoint.id))) throw webhookNotFound();
    deps.logger.info({ pipelineId: endpoint.pipeline_id, endpointId: endpoint.id, by: logText(c.get("principal").subject) }, "webhook endpoint deleted");
    return c.body(null, 204);
  });

  app.get("/:pipeline_id/webhooks/:webhook_id/deliveries", async (c) => {
    const endpoint = await requireEndpoint(deps, c);
    const query = DeliveriesQuery.safeParse({ limit: c.req.query("limit") });
    if (!query.success) throw new HttpError(422, zodMessage(query.error));
    return c.json({ deliveries: await listWebhookDeliveries(deps.editor, endpoint.id, { limit: query.data.limit }) });
  });

  app.post("/:pipeline_id/webhooks/:webhook_id/deliveries/:delivery_id/redeliver", async (c) => {
    const endpoint = await requireEndpoint(deps, c);
    await noBody(c);
    const deliveryId = c.req.param("delivery_id");
    const result = DELIVERY_ID.test(deliveryId) ? await redeliverWebhook(deps.editor, endpoint.id, deliveryId) : "not_found";
    if (result === "not_found") throw new HttpError(404, "Delivery not found");
    if (result === "in_flight") throw new HttpError(409, "An attempt of this delivery is being sent right now; ask again once it is in the log");
    deps.logger.info(
      { pipelineId: endpoint.pipeline_id, endpointId: endpoint.id, deliveryId, by: logText(c.get("principal").subject) },
      "webhook redelivery queued",
    );
    return c.json({ delivery: result }, 202);
  });

  return app;
}
