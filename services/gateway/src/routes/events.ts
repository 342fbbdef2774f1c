import { Hono } from "hono";
import { streamSSE } from "hono/streaming";
import { NodeChanged } from "@vp/contracts";
import { lastSequence, replayEvents, type Replay } from "@vp/bus";
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

    const streamName = deps.topology.streams.events.name;
    const subject = deps.topology.subjects.events(pipelineId);
    const logger = deps.logger.child({ pipelineId, sse: true });

    return streamSSE(c, async (sse) => {
      // Writes coalesce: what arrives while a write is in flight leaves with the next one, in order (one socket
      // write per burst instead of one per event: 1,000 streams of a busy pipeline are millions of events).
      let pending = "";
      let writing: Promise<void> | undefined;
      const write = (text: string) => {
        pending += text;
        writing ??= (async () => {
          while (pending) {
            const out = pending;
            pending = "";
            await sse.write(out).catch(() => undefined);
          }
          writing = undefined;
        })();
      };

      // Live events come from the pipeline's shared subscription. Until this stream knows where it starts
      // (snapshot or resume point, and the private catch-up of a resume), they wait in `early`.
      let live = false;
      let startSeq = 0;
      let lastSent = 0;
      const early: Array<[number, string]> = [];
      const deliver = (seq: number, frame: string) => {
        if (seq < startSeq || seq <= lastSent) return;
        lastSent = seq;
        write(frame);
      };
      const detach = await hubs.attach(pipelineId, (seq, frame) => (live ? deliver(seq, frame) : void early.push([seq, frame])));
      let catchUp: Replay | undefined;
      metrics.sseConnections.inc();
      let shuttingDown = false;
      let keepAlive: NodeJS.Timeout | undefined;
      try {
        // Read after attaching: every event above the shared subscription's position at attach time comes
        // from it, and that position is at most the stream's last sequence read now.
        const info = await deps.bus.jsm.streams.info(streamName);
        const { first_seq: firstSeq, last_seq: lastSeq } = info.state;
        if (lastEventId !== null && lastEventId <= lastSeq && lastEventId + 1 >= firstSeq) {
          startSeq = lastEventId + 1;
          // Events between the resume point and the subject's last one (read after attaching, so at or above
          // the shared subscription's position) come from a private replay that ends there.
          const last = await deps.bus.jsm.streams.getMessage(streamName, { last_by_subj: subject });
          if (last && last.seq >= startSeq) {
            await new Promise<void>((resolve) => {
              catchUp = replayEvents(deps.bus, {
                stream: streamName,
                subject,
                startSeq,
                schema: NodeChanged,
                onEvent: (seq: number, event: NodeChanged) => {
                  if (seq <= last.seq) deliver(seq, nodeFrame(seq, event));
                  if (seq >= last.seq) resolve();
                },
                onError: (error: unknown) => logger.warn({ err: error }, "event replay error"),
              });
              sse.onAbort(() => resolve());
              void deps.closing.then(() => resolve());
            });
            await catchUp?.stop();
            catchUp = undefined;
          }
        } else {
          if (lastEventId !== null) logger.info({ lastEventId, firstSeq, lastSeq }, "Last-Event-ID outside the stream; sending a snapshot");
          const fresh = await getPipeline(deps.reader, pipelineId);
          const rows = await listNodes(deps.reader, pipelineId);
          const nodes = rows.map(toSerializedNode);
          // Each node's stateVersion as read, so a client drops a replayed event older than the snapshot.
          const stateVersions = Object.fromEntries(rows.map((row) => [row.id, row.state_version]));
          write(`event: snapshot\ndata: ${JSON.stringify({ pipeline: { ...fresh, nodes }, stateVersions })}\nid: ${lastSeq}\nretry: 2000\n\n`);
          startSeq = lastSeq + 1;
        }
        for (const [seq, frame] of early.splice(0)) deliver(seq, frame);
        live = true;

        keepAlive = setInterval(() => write(": keep-alive\n\n"), (deps.sseKeepAliveSeconds ?? 15) * 1000);
        await new Promise<void>((resolve) => {
          if (sse.aborted) resolve();
          sse.onAbort(() => resolve());
          deps.closing.then(() => {
            shuttingDown = true;
            resolve();
          });
        });
      } finally {
        metrics.sseConnections.dec();
        clearInterval(keepAlive);
        await catchUp?.stop();
        await detach();
      }
      // The gateway is shutting down: tell the browser to reconnect soon (to another replica) with its
      // Last-Event-ID, then end the stream.
      if (shuttingDown) {
        write("retry: 1000\n\n");
        await writing;
      }
    });
  });

  return app;
}

/** An SSE `node` frame, formatted once and written to every stream of the pipeline. */
function nodeFrame(seq: number, event: NodeChanged): string {
  return `event: node\ndata: ${JSON.stringify(event)}\nid: ${seq}\n\n`;
}

type Listener = (seq: number, frame: string) => void;

/**
 * One subscription of VP_EVENTS per pipeline on this gateway, shared by all of the pipeline's open streams:
 * each event is read, validated and formatted once, however many clients watch (one consumer per stream
 * made nats-server deliver, and the gateway parse, every event once per client). A hub starts at the
 * stream's last sequence + 1, read before its first listener attaches, and delivers every later event of the
 * subject in order; it stops with its last listener.
 */
function createHubs(deps: GatewayDeps) {
  const hubs = new Map<string, Promise<{ listeners: Set<Listener>; replay: Replay }>>();

  const open = (pipelineId: string) => {
    // Read here, not when the routes are built: building the app needs no bus (route listings, tests).
    const streamName = deps.topology.streams.events.name;
    const logger = deps.logger.child({ pipelineId, sse: true });
    const hub = (async () => {
      const listeners = new Set<Listener>();
      const startSeq = (await lastSequence(deps.bus, streamName)) + 1;
      const replay = replayEvents(deps.bus, {
        stream: streamName,
        subject: deps.topology.subjects.events(pipelineId),
        startSeq,
        schema: NodeChanged,
        onEvent: (seq: number, event: NodeChanged) => {
          const frame = nodeFrame(seq, event);
          for (const listener of listeners) listener(seq, frame);
        },
        onError: (error: unknown) => logger.warn({ err: error }, "event replay error"),
      });
      return { listeners, replay };
    })();
    hubs.set(pipelineId, hub);
    hub.catch(() => hubs.get(pipelineId) === hub && hubs.delete(pipelineId));
    return hub;
  };

  return {
    /** Adds `listener` to the pipeline's hub (opening it if needed); the returned function removes it. */
    async attach(pipelineId: string, listener: Listener): Promise<() => Promise<void>> {
      for (;;) {
        const pending = hubs.get(pipelineId) ?? open(pipelineId);
        const hub = await pending;
        // The hub may have been closed by its last listener while this one waited for it to open.
        if (hubs.get(pipelineId) !== pending) continue;
        hub.listeners.add(listener);
        return async () => {
          hub.listeners.delete(listener);
          if (hub.listeners.size === 0 && hubs.get(pipelineId) === pending) {
            hubs.delete(pipelineId);
            await hub.replay.stop();
          }
        };
      }
    },
  };
}
