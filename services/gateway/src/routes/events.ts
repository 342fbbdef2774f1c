import { Hono } from "hono";
import { streamSSE } from "hono/streaming";
import { NodeChanged } from "@vp/contracts";
import { replayEvents } from "@vp/bus";
import { listNodes, toSerializedNode } from "@vp/db";
import type { GatewayDeps } from "../deps";
import { HttpError, notFound } from "../errors";
import { noBody, pathId } from "../validation";
import { getPipeline } from "@vp/db";
import { metrics } from "@vp/telemetry";

/**
 * GET /pipelines/:id/events — Server-Sent Events of every committed change of the pipeline.
 * `id:` is the VP_EVENTS stream sequence. A new client gets a `snapshot` event first (the pipeline and
 * its nodes, read after noting the stream position, so nothing committed in between is missed). A client
 * that reconnects with Last-Event-ID gets exactly the events after that id; if those have expired from the
 * stream it gets a fresh snapshot instead of a silent gap. The auth middleware lets it open only with a
 * stream token of this pipeline in `?token=` (never logged: request logs carry the path only).
 */
export function eventRoutes(deps: GatewayDeps) {
  const app = new Hono();

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

    const streamName = deps.topology.streams.events.name;
    const subject = deps.topology.subjects.events(pipelineId);
    const logger = deps.logger.child({ pipelineId, sse: true });

    return streamSSE(c, async (sse) => {
      // Writes are chained so events leave in stream order even though replay callbacks are synchronous.
      let chain = Promise.resolve();
      const send = (message: { event: string; id: string; data: string; retry?: number }) => {
        chain = chain.then(() => sse.writeSSE(message)).catch(() => undefined);
        return chain;
      };

      const info = await deps.bus.jsm.streams.info(streamName);
      const { first_seq: firstSeq, last_seq: lastSeq } = info.state;
      let startSeq: number;
      if (lastEventId !== null && lastEventId <= lastSeq && lastEventId + 1 >= firstSeq) {
        startSeq = lastEventId + 1;
      } else {
        if (lastEventId !== null) logger.info({ lastEventId, firstSeq, lastSeq }, "Last-Event-ID outside the stream; sending a snapshot");
        const fresh = await getPipeline(deps.reader, pipelineId);
        const rows = await listNodes(deps.reader, pipelineId);
        const nodes = rows.map(toSerializedNode);
        // Each node's stateVersion as read, so a client drops a replayed event older than the snapshot.
        const stateVersions = Object.fromEntries(rows.map((row) => [row.id, row.state_version]));
        await send({ event: "snapshot", id: String(lastSeq), data: JSON.stringify({ pipeline: { ...fresh, nodes }, stateVersions }), retry: 2000 });
        startSeq = lastSeq + 1;
      }

      const replay = await replayEvents(deps.bus, {
        stream: streamName,
        subject,
        startSeq,
        schema: NodeChanged,
        onEvent: (seq: number, event: NodeChanged) => {
          void send({ event: "node", id: String(seq), data: JSON.stringify(event) });
        },
        onError: (error: unknown) => logger.warn({ err: error }, "event replay error"),
      });

      const keepAlive = setInterval(() => {
        chain = chain.then(() => sse.write(": keep-alive\n\n")).then(() => undefined).catch(() => undefined);
      }, (deps.sseKeepAliveSeconds ?? 15) * 1000);

      metrics.sseConnections.inc();
      let shuttingDown = false;
      try {
        await new Promise<void>((resolve) => {
          sse.onAbort(() => resolve());
          deps.closing.then(() => {
            shuttingDown = true;
            resolve();
          });
        });
      } finally {
        metrics.sseConnections.dec();
      }
      clearInterval(keepAlive);
      await replay.stop();
      // The gateway is shutting down: tell the browser to reconnect soon (to another replica) with its
      // Last-Event-ID, then end the stream.
      if (shuttingDown) await chain.then(() => sse.write("retry: 1000\n\n")).catch(() => undefined);
    });
  });

  return app;
}
