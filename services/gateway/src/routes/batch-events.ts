import { Hono, type Context } from "hono";
import type { GatewayDeps } from "../deps";
import { HttpError } from "../errors";
import { requireBatch } from "../batches/records";
import { createBatchHubs, serveBatchStream, type BatchHubOptions } from "../sse/batch-stream";
import { nodeResponseOf, nodeResponseSink, readableStreamSink, responseAlreadySent, sseHeaders } from "../sse/sink";
import { noBody } from "../validation";

/** Most bytes one batch stream holds for a client that does not keep up; past it the stream ends and the client resumes. */
const MAX_QUEUED_BYTES = 4 * 1024 * 1024;

/** A batch's stream tokens are stream tokens for this scope (a pipeline's never open a batch's stream, nor the reverse). */
export const batchStreamScope = (batchId: string) => `batch:${batchId}`;

/** The id a reconnecting client resumes after (Last-Event-ID, or `?lastEventId=`): a safe point in microseconds. */
function lastEventIdOf(c: Context): number | null {
  const raw = c.req.header("last-event-id") ?? c.req.query("lastEventId");
  if (raw === undefined || raw === "") return null;
  if (!/^\d{1,16}$/.test(raw)) throw new HttpError(400, "Last-Event-ID must be a non-negative integer (the id of the last event received)");
  return Number(raw);
}

/**
 * GET /batches/:id/events — Server-Sent Events of a batch's rows: `row` ({ index, status, cost, output, error }),
 * `counts` (at most once a second, when they changed), `batch` ({ status }, when it changed) and `mark` (no data:
 * moves a quiet client's last id on). Ids are safe points of the database's clock in microseconds (see
 * batch-stream.ts). A new client first gets every row, the counts and the status; one that reconnects with
 * Last-Event-ID gets the rows changed after it, then the same.
 * Opened with a stream token of the batch (POST /batches/:id/events/token) in `?token=`.
 */
export function batchEventRoutes(deps: GatewayDeps, options: BatchHubOptions = {}) {
  const app = new Hono();
  const streams = { deps, hubs: createBatchHubs(deps, options), maxQueuedBytes: MAX_QUEUED_BYTES };

  app.post("/:id/events/token", async (c) => {
    const batchId = (await requireBatch(deps.reader, c)).id;
    await noBody(c);
    const { token, expiresAt } = await deps.auth.tokens.mintStreamToken(c.get("principal").subject, batchStreamScope(batchId));
    return c.json({ token, expires_at: expiresAt.toISOString() }, 201);
  });

  app.get("/:id/events", async (c) => {
    const batchId = (await requireBatch(deps.reader, c)).id;
    const lastEventId = lastEventIdOf(c);
    const headers = sseHeaders(c.res.headers);
    const res = nodeResponseOf(c.env);
    if (res) {
      void serveBatchStream(streams, batchId, lastEventId, nodeResponseSink(res, headers));
      return responseAlreadySent(c);
    }
    const { sink, body } = readableStreamSink();
    void serveBatchStream(streams, batchId, lastEventId, sink);
    return new Response(body, { status: 200, headers });
  });

  return app;
}
