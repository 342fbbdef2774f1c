import { Hono, type Context } from "hono";
import { getPipeline } from "@vp/db";
import { limitsOf, type GatewayDeps } from "../deps";
import { HttpError, notFound } from "../errors";
import { createHubs } from "../sse/hub";
import { servePipelineStream } from "../sse/pipeline-stream";
import { nodeResponseOf, nodeResponseSink, readableStreamSink, responseAlreadySent, sseHeaders } from "../sse/sink";
import { noBody, pathId } from "../validation";

/**
 * Most bytes one stream holds for a client that does not keep up (queued, or written and not yet taken by its
 * socket; the snapshot too): about 6,000 events of a wide run. Past it the stream ends with a retry hint and the
 * client resumes from JetStream. At least twice the pipeline structure limit, so a snapshot always fits.
 */
export const MAX_QUEUED_BYTES = 4 * 1024 * 1024;

export interface EventRouteOptions {
  /** See MAX_QUEUED_BYTES (tests set a small one). */
  maxQueuedBytes?: number;
}

/** The id a reconnecting client resumes after (Last-Event-ID, or `?lastEventId=`); null for a new client. */
function lastEventIdOf(c: Context): number | null {
  const raw = c.req.header("last-event-id") ?? c.req.query("lastEventId");
  if (raw === undefined || raw === "") return null;
  if (!/^\d{1,15}$/.test(raw)) throw new HttpError(400, "Last-Event-ID must be a non-negative integer");
  return Number(raw);
}

/**
 * GET /pipelines/:id/events — Server-Sent Events of every committed change of the pipeline.
 * `id:` is the VP_EVENTS stream sequence. A new client gets a `snapshot` event first (the pipeline and
 * its nodes, read after noting the stream position, so nothing committed in between is missed). A client
 * that reconnects with Last-Event-ID gets exactly the events after that id; if those have expired from the
 * stream it gets a fresh snapshot instead of a silent gap. The auth middleware lets it open only with a
 * stream token of this pipeline in `?token=` (never logged: request logs carry the path only).
 */
export function eventRoutes(deps: GatewayDeps, options: EventRouteOptions = {}) {
  const app = new Hono();
  const streams = {
    deps,
    hubs: createHubs(deps),
    maxQueuedBytes: options.maxQueuedBytes ?? Math.max(MAX_QUEUED_BYTES, 2 * limitsOf(deps).maxStructureBytes),
  };

  /**
   * POST /pipelines/:id/events/token (viewer): a stream token for this pipeline's events, to pass as
   * `?token=` (EventSource cannot send an Authorization header). It must be used within its lifetime (60 s by
   * default) to open the stream; an open stream outlives it. Mint a new one for every (re)connect.
   */
  app.post("/:id/events/token", async (c) => {
    const pipelineId = pathId(c.req.param("id"), "Pipeline");
    if (!(await getPipeline(deps.reader, pipelineId))) throw notFound("Pipeline");
    await noBody(c);
    const { token, expiresAt } = await deps.auth.tokens.mintStreamToken(c.get("principal").subject, pipelineId);
    return c.json({ token, expires_at: expiresAt.toISOString() }, 201);
  });

  app.get("/:id/events", async (c) => {
    const pipelineId = pathId(c.req.param("id"), "Pipeline");
    const pipeline = await getPipeline(deps.reader, pipelineId);
    if (!pipeline) throw notFound("Pipeline");
    const lastEventId = lastEventIdOf(c);

    // Under @hono/node-server the stream is written straight to Node's response (one res.write of a shared
    // Buffer per flush); web streams per write cost more CPU than the rest of the path at 1,000 streams.
    const headers = sseHeaders(c.res.headers);
    const res = nodeResponseOf(c.env);
    if (res) {
      void servePipelineStream(streams, pipelineId, lastEventId, nodeResponseSink(res, headers));
      return responseAlreadySent(c);
    }
    const { sink, body } = readableStreamSink();
    void servePipelineStream(streams, pipelineId, lastEventId, sink);
    return new Response(body, { status: 200, headers });
  });

  return app;
}
