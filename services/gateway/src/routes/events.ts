import { Hono } from "hono";
import { NodeChanged } from "@vp/contracts";
import { replayEvents, type Replay } from "@vp/bus";
import { getPipeline, listNodes, toSerializedNode } from "@vp/db";
import { metrics } from "@vp/telemetry";
import type { GatewayDeps } from "../deps";
import { wholeReadsOf } from "../read-gate";
import { limitsOf } from "./nodes";
import { HttpError, notFound } from "../errors";
import { createHubs, framesAfter, nodeFrame, singleFrame, type FrameBatch } from "../sse/hub";
import { nodeResponseOf, nodeResponseSink, readableStreamSink, responseAlreadySent, sseHeaders, type SseSink } from "../sse/sink";
import { createSseStream, RETRY_SOON } from "../sse/stream";
import { noBody, pathId } from "../validation";

/**
 * Most bytes one stream holds for a client that does not keep up (queued, or written and not yet taken by its
 * socket; the snapshot too): about 6,000 events of a wide run. Past it the stream ends with a retry hint and the
 * client resumes from JetStream. At least twice the pipeline structure limit, so a snapshot always fits.
 */
export const MAX_QUEUED_BYTES = 4 * 1024 * 1024;
const KEEP_ALIVE = Buffer.from(": keep-alive\n\n");
const SNAPSHOT_HEAD = Buffer.from("event: snapshot\ndata: ");

export interface EventRouteOptions {
  /** See MAX_QUEUED_BYTES (tests set a small one). */
  maxQueuedBytes?: number;
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
  const hubs = createHubs(deps);

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

    const rawLast = c.req.header("last-event-id") ?? c.req.query("lastEventId");
    let lastEventId: number | null = null;
    if (rawLast !== undefined && rawLast !== "") {
      if (!/^\d{1,15}$/.test(rawLast)) throw new HttpError(400, "Last-Event-ID must be a non-negative integer");
      lastEventId = Number(rawLast);
    }

    // Under @hono/node-server the stream is written straight to Node's response (one res.write of a shared
    // Buffer per flush); web streams per write cost more CPU than the rest of the path at 1,000 streams.
    const headers = sseHeaders(c.res.headers);
    const res = nodeResponseOf(c.env);
    if (res) {
      void serveStream(pipelineId, lastEventId, nodeResponseSink(res, headers));
      return responseAlreadySent(c);
    }
    const { sink, body } = readableStreamSink();
    void serveStream(pipelineId, lastEventId, sink);
    return new Response(body, { status: 200, headers });
  });

  /** The life of one stream: its start (snapshot or resume), the live events, its end. Never throws. */
  async function serveStream(pipelineId: string, lastEventId: number | null, sink: SseSink) {
    const streamName = deps.topology.streams.events.name;
    const subject = deps.topology.subjects.events(pipelineId);
    const logger = deps.logger.child({ pipelineId, sse: true });
    const stream = createSseStream(sink, {
      maxQueuedBytes: options.maxQueuedBytes ?? Math.max(MAX_QUEUED_BYTES, 2 * limitsOf(deps).maxStructureBytes),
      onOverflow: (queuedBytes) => logger.warn({ queuedBytes, lastSent }, "SSE client too far behind; ending its stream so it resumes with Last-Event-ID"),
    });

    // Live events come from the pipeline's shared hub. Until this stream knows where it starts (snapshot or
    // resume point, and the private catch-up of a resume), they wait in `early`. Every frame after `lastSent`
    // is written once, in sequence order; the ones at or below it were sent already (or precede the start).
    let live = false;
    let lastSent = 0;
    const early: FrameBatch[] = [];
    const deliver = (batch: FrameBatch) => {
      const frames = framesAfter(batch, lastSent);
      if (!frames) return;
      lastSent = batch.seqs.at(-1)!;
      stream.write(frames);
    };
    let detach: (() => Promise<void>) | undefined;
    let catchUp: Replay | undefined;
    let keepAlive: NodeJS.Timeout | undefined;
    let shuttingDown = false;
    metrics.sseConnections.inc();
    try {
      detach = await hubs.attach(pipelineId, (batch) => (live ? deliver(batch) : void early.push(batch)));
      // Read after attaching: every event above the shared subscription's position at attach time comes
      // from it, and that position is at most the stream's last sequence read now.
      const info = await deps.bus.jsm.streams.info(streamName);
      const { first_seq: firstSeq, last_seq: lastSeq } = info.state;
      if (lastEventId !== null && lastEventId <= lastSeq && lastEventId + 1 >= firstSeq) {
        lastSent = lastEventId;
        // Events between the resume point and the subject's last one (read after attaching, so at or above
        // the shared subscription's position) come from a private replay that ends there.
        const last = await deps.bus.jsm.streams.getMessage(streamName, { last_by_subj: subject });
        if (last && last.seq > lastSent) {
          await new Promise<void>((resolve) => {
            catchUp = replayEvents(deps.bus, {
              stream: streamName,
              subject,
              startSeq: lastSent + 1,
              schema: NodeChanged,
              onEvent: (seq: number, event: NodeChanged) => {
                if (seq <= last.seq) deliver(singleFrame(seq, nodeFrame(seq, event)));
                if (seq >= last.seq) resolve();
              },
              onError: (error: unknown) => logger.warn({ err: error }, "event replay error"),
            });
            void stream.closed.then(() => resolve());
            void deps.closing.then(() => resolve());
          });
          await catchUp?.stop();
          catchUp = undefined;
        }
      } else {
        if (lastEventId !== null) logger.info({ lastEventId, firstSeq, lastSeq }, "Last-Event-ID outside the stream; sending a snapshot");
        // Read after `lastSeq` (streams opened together share one read that starts after each of them noted its
        // position); one frame, under the stream's cap like any other (the pipeline limits keep it well below).
        const { gate, snapshots } = wholeReadsOf(deps);
        const data = await snapshots(pipelineId, () =>
          gate.run(async () => {
            const fresh = await getPipeline(deps.reader, pipelineId);
            const rows = await listNodes(deps.reader, pipelineId);
            const nodes = rows.map(toSerializedNode);
            // Each node's stateVersion as read, so a client drops a replayed event older than the snapshot.
            const stateVersions = Object.fromEntries(rows.map((row) => [row.id, row.state_version]));
            return Buffer.from(JSON.stringify({ pipeline: { ...fresh, nodes }, stateVersions }));
          }),
        );
        stream.write([SNAPSHOT_HEAD, data, Buffer.from(`\nid: ${lastSeq}\nretry: 2000\n\n`)]);
        lastSent = lastSeq;
      }
      for (const batch of early.splice(0)) deliver(batch);
      live = true;

      keepAlive = setInterval(() => stream.write(KEEP_ALIVE), (deps.sseKeepAliveSeconds ?? 15) * 1000);
      await Promise.race([stream.closed, deps.closing.then(() => void (shuttingDown = true))]);
    } catch (error) {
      // The client reconnects (EventSource does on its own) with the last id it got.
      logger.warn({ err: error }, "SSE stream failed");
    } finally {
      metrics.sseConnections.dec();
      clearInterval(keepAlive);
      await catchUp?.stop();
      await detach?.();
    }
    // The gateway is shutting down: tell the browser to reconnect soon (to another replica) with its
    // Last-Event-ID, then end the stream.
    stream.end(shuttingDown ? RETRY_SOON : undefined);
  }

  return app;
}
