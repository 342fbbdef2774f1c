import { NodeChanged } from "@vp/contracts";
import { replayEvents, type Replay } from "@vp/bus";
import { getPipeline, listNodes, toSerializedNode } from "@vp/db";
import { metrics, type Logger } from "@vp/telemetry";
import type { GatewayDeps } from "../deps";
import { wholeReadsOf } from "../read-gate";
import { framesAfter, nodeFrame, singleFrame, type FrameBatch, type Hubs } from "./hub";
import type { SseSink } from "./sink";
import { createSseStream, RETRY_SOON, type SseStream } from "./stream";

const KEEP_ALIVE = Buffer.from(": keep-alive\n\n");
const SNAPSHOT_HEAD = Buffer.from("event: snapshot\ndata: ");

/** What every event stream of one gateway shares. */
export interface PipelineStreamResources {
  deps: GatewayDeps;
  /** The pipelines' shared subscriptions of VP_EVENTS (createHubs). */
  hubs: Hubs;
  /** Most bytes one stream holds for a client that does not keep up (see createSseStream). */
  maxQueuedBytes: number;
}

/**
 * One stream's live events. They come from the pipeline's shared hub; until the stream knows where it starts
 * (snapshot or resume point, and the private catch-up of a resume), they wait. Every frame after `lastSent` is
 * written once, in sequence order; the ones at or below it were sent already (or precede the start).
 */
function createForwarder(stream: SseStream) {
  let live = false;
  let lastSent = 0;
  const early: FrameBatch[] = [];
  const earlyStructure: Buffer[] = [];
  const deliver = (batch: FrameBatch) => {
    const frames = framesAfter(batch, lastSent);
    if (!frames) return;
    lastSent = batch.seqs.at(-1)!;
    stream.write(frames);
  };
  return {
    get lastSent() {
      return lastSent;
    },
    /** The stream starts after `seq`: frames at or below it are never written. */
    startAfter(seq: number) {
      lastSent = seq;
    },
    deliver,
    /** The hub's listener. */
    receive(batch: FrameBatch) {
      if (live) deliver(batch);
      else early.push(batch);
    },
    /** The hub's structure listener: structure frames carry their own revision (a client drops the ones it has). */
    receiveStructure(frame: Buffer) {
      if (live) stream.write(frame);
      else earlyStructure.push(frame);
    },
    /** The start is written: what waited goes out, then every batch as it comes. */
    goLive() {
      for (const batch of early.splice(0)) deliver(batch);
      for (const frame of earlyStructure.splice(0)) stream.write(frame);
      live = true;
    },
  };
}

type Forwarder = ReturnType<typeof createForwarder>;

/**
 * Events between the resume point and the subject's last one (read after attaching, so at or above the shared
 * subscription's position) come from a private replay that ends there, or when the stream or the gateway closes.
 */
async function catchUp(deps: GatewayDeps, pipelineId: string, stream: SseStream, forwarder: Forwarder, logger: Logger) {
  const streamName = deps.topology.streams.events.name;
  const subject = deps.topology.subjects.events(pipelineId);
  const last = await deps.bus.jsm.streams.getMessage(streamName, { last_by_subj: subject });
  if (!last || last.seq <= forwarder.lastSent) return;
  let replay: Replay | undefined;
  try {
    await new Promise<void>((resolve) => {
      replay = replayEvents(deps.bus, {
        stream: streamName,
        subject,
        startSeq: forwarder.lastSent + 1,
        schema: NodeChanged,
        onEvent: (seq: number, event: NodeChanged) => {
          if (seq <= last.seq) forwarder.deliver(singleFrame(seq, nodeFrame(seq, event)));
          if (seq >= last.seq) resolve();
        },
        onError: (error: unknown) => logger.warn({ err: error }, "event replay error"),
      });
      void stream.closed.then(() => resolve());
      void deps.closing.then(() => resolve());
    });
  } finally {
    await replay?.stop();
  }
}

/**
 * The snapshot frame's data: the pipeline and its nodes, with each node's stateVersion as read so a client drops a
 * replayed event older than the snapshot. Streams opened together share one read, which starts after each of them
 * noted its position; it is one frame under the stream's cap like any other (the pipeline limits keep it well below).
 */
function snapshotOf(deps: GatewayDeps, pipelineId: string): Promise<Buffer> {
  const { gate, snapshots } = wholeReadsOf(deps);
  return snapshots(pipelineId, () =>
    gate.run(async () => {
      const fresh = await getPipeline(deps.reader, pipelineId);
      const rows = await listNodes(deps.reader, pipelineId);
      const nodes = rows.map(toSerializedNode);
      const stateVersions = Object.fromEntries(rows.map((row) => [row.id, row.state_version]));
      return Buffer.from(JSON.stringify({ pipeline: { ...fresh, nodes }, stateVersions }));
    }),
  );
}

/**
 * Writes where a stream starts: right after a Last-Event-ID still held by the stream (with its catch-up), else a
 * snapshot. Called after attaching to the hub: every event above the shared subscription's position at attach time
 * comes from it, and that position is at most the stream's last sequence read here.
 */
async function writeStart(deps: GatewayDeps, pipelineId: string, lastEventId: number | null, stream: SseStream, forwarder: Forwarder, logger: Logger) {
  const info = await deps.bus.jsm.streams.info(deps.topology.streams.events.name);
  const { first_seq: firstSeq, last_seq: lastSeq } = info.state;
  if (lastEventId !== null && lastEventId <= lastSeq && lastEventId + 1 >= firstSeq) {
    forwarder.startAfter(lastEventId);
    await catchUp(deps, pipelineId, stream, forwarder, logger);
    // Structure changes made while the client was away are not replayed: it learns the current revision and
    // reloads the structure if it is behind.
    const pipeline = await getPipeline(deps.reader, pipelineId);
    stream.write(Buffer.from(`event: revision\ndata: ${JSON.stringify({ revision: pipeline?.revision ?? 0 })}\n\n`));
    return;
  }
  if (lastEventId !== null) logger.info({ lastEventId, firstSeq, lastSeq }, "Last-Event-ID outside the stream; sending a snapshot");
  const data = await snapshotOf(deps, pipelineId);
  stream.write([SNAPSHOT_HEAD, data, Buffer.from(`\nid: ${lastSeq}\nretry: 2000\n\n`)]);
  forwarder.startAfter(lastSeq);
}

/** The life of one pipeline's event stream: its start (snapshot or resume), the live events, its end. Never throws. */
export async function servePipelineStream(resources: PipelineStreamResources, pipelineId: string, lastEventId: number | null, sink: SseSink) {
  const { deps, hubs } = resources;
  const logger = deps.logger.child({ pipelineId, sse: true });
  const stream = createSseStream(sink, {
    maxQueuedBytes: resources.maxQueuedBytes,
    onOverflow: (queuedBytes) =>
      logger.warn({ queuedBytes, lastSent: forwarder.lastSent }, "SSE client too far behind; ending its stream so it resumes with Last-Event-ID"),
  });
  const forwarder = createForwarder(stream);
  let detach: (() => Promise<void>) | undefined;
  let keepAlive: NodeJS.Timeout | undefined;
  let shuttingDown = false;
  metrics.sseConnections.inc();
  try {
    detach = await hubs.attach(pipelineId, forwarder.receive, forwarder.receiveStructure);
    await writeStart(deps, pipelineId, lastEventId, stream, forwarder, logger);
    forwarder.goLive();
    keepAlive = setInterval(() => stream.write(KEEP_ALIVE), (deps.sseKeepAliveSeconds ?? 15) * 1000);
    await Promise.race([stream.closed, deps.closing.then(() => void (shuttingDown = true))]);
  } catch (error) {
    // The client reconnects (EventSource does on its own) with the last id it got.
    logger.warn({ err: error }, "SSE stream failed");
  } finally {
    metrics.sseConnections.dec();
    clearInterval(keepAlive);
    await detach?.();
  }
  // The gateway is shutting down: tell the browser to reconnect soon (to another replica) with its
  // Last-Event-ID, then end the stream.
  stream.end(shuttingDown ? RETRY_SOON : undefined);
}
