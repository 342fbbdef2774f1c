import { NodeChanged, StructureChanged } from "@vp/contracts";
import { lastSequence, replayEvents, type Replay } from "@vp/bus";
import type { GatewayDeps } from "../deps";

/**
 * Consecutive `node` frames of one pipeline, encoded once into one Buffer that every stream writes as is.
 * `seqs[i]` is the VP_EVENTS sequence of the i-th frame (its `id:`), which starts at byte `offsets[i]`.
 */
export interface FrameBatch {
  bytes: Buffer;
  seqs: number[];
  offsets: number[];
}

/** An SSE `node` frame; its `id:` is the stream sequence, what a browser sends back as Last-Event-ID. */
export function nodeFrame(seq: number, event: NodeChanged): Buffer {
  return Buffer.from(`event: node\ndata: ${JSON.stringify(event)}\nid: ${seq}\n\n`);
}

export function singleFrame(seq: number, frame: Buffer): FrameBatch {
  return { bytes: frame, seqs: [seq], offsets: [0] };
}

/** The frames of `batch` after sequence `lastSent`: the whole Buffer, a view of its tail (no copy), or none. */
export function framesAfter(batch: FrameBatch, lastSent: number): Buffer | undefined {
  if (batch.seqs[0]! > lastSent) return batch.bytes;
  const i = batch.seqs.findIndex((seq) => seq > lastSent);
  return i < 0 ? undefined : batch.bytes.subarray(batch.offsets[i]);
}

/** An SSE `structure` frame: no `id:` (structure changes are not stored; a client that sees a revision gap reloads). */
export function structureFrame(event: StructureChanged): Buffer {
  return Buffer.from(`event: structure\ndata: ${JSON.stringify(event)}\n\n`);
}

type Listener = (batch: FrameBatch) => void;
type StructureListener = (frame: Buffer) => void;

interface Hub {
  listeners: Set<Listener>;
  structureListeners: Set<StructureListener>;
  replay: Replay;
  /** The pipeline's structure changes (core NATS, from whichever replica wrote them). */
  structure: { unsubscribe(): void };
  /** Logged when the hub closes: events per flush is what one socket write per stream buys. */
  stats: { flushes: number; events: number };
  logger: GatewayDeps["logger"];
}

/**
 * One subscription of VP_EVENTS per pipeline on this gateway, shared by all of the pipeline's open streams:
 * each event is read, validated and encoded once, however many clients watch (one consumer per stream made
 * nats-server deliver, and the gateway parse, every event once per client). A hub starts at the stream's last
 * sequence + 1, read before its first listener attaches, and delivers every later event of the subject in
 * order; it stops with its last listener.
 *
 * Events that arrive together (a group commit's events come in one read from NATS) leave together: the first
 * one of a burst schedules a flush for the end of the event loop's turn (setImmediate), and the flush hands all
 * of them, as one Buffer, to every listener. Each stream then makes one socket write per flush, not per event:
 * with 1,000 streams, writes per second are what bounds the gateway. The busier the gateway, the longer its
 * turns and the more events each flush carries, so the cost per event falls as the load rises.
 */
export function createHubs(deps: Pick<GatewayDeps, "bus" | "topology" | "logger">) {
  const hubs = new Map<string, Promise<Hub>>();

  const open = (pipelineId: string) => {
    // Read here, not when the routes are built: building the app needs no bus (route listings, tests).
    const streamName = deps.topology.streams.events.name;
    const logger = deps.logger.child({ pipelineId, sse: true });
    const hub = (async (): Promise<Hub> => {
      const listeners = new Set<Listener>();
      const structureListeners = new Set<StructureListener>();
      // Subscribed before the stream's start is read, so no change committed after a client's snapshot is missed.
      const structure = deps.bus.nc.subscribe(deps.topology.subjects.structure(pipelineId), {
        callback: (error, msg) => {
          if (error) return logger.warn({ err: error }, "structure subscription error");
          let parsed: ReturnType<typeof StructureChanged.safeParse>;
          try {
            parsed = StructureChanged.safeParse(msg.json());
          } catch {
            return logger.warn({ subject: msg.subject }, "structure change is not JSON; dropped");
          }
          if (!parsed.success) return logger.warn({ subject: msg.subject }, "structure change does not match its schema; dropped");
          const frame = structureFrame(parsed.data);
          for (const listener of structureListeners) listener(frame);
        },
      });
      let frames: Buffer[] = [];
      let seqs: number[] = [];
      const stats = { flushes: 0, events: 0 };
      const flush = () => {
        stats.flushes++;
        stats.events += frames.length;
        const batch: FrameBatch = { bytes: frames.length === 1 ? frames[0]! : Buffer.concat(frames), seqs, offsets: [] };
        let offset = 0;
        for (const frame of frames) {
          batch.offsets.push(offset);
          offset += frame.length;
        }
        frames = [];
        seqs = [];
        for (const listener of listeners) listener(batch);
      };
      const startSeq = (await lastSequence(deps.bus, streamName)) + 1;
      const replay = replayEvents(deps.bus, {
        stream: streamName,
        subject: deps.topology.subjects.events(pipelineId),
        startSeq,
        schema: NodeChanged,
        onEvent: (seq: number, event: NodeChanged) => {
          if (frames.length === 0) setImmediate(flush);
          frames.push(nodeFrame(seq, event));
          seqs.push(seq);
        },
        onError: (error: unknown) => logger.warn({ err: error }, "event replay error"),
      });
      return { listeners, structureListeners, replay, structure, stats, logger };
    })();
    hubs.set(pipelineId, hub);
    hub.catch(() => hubs.get(pipelineId) === hub && hubs.delete(pipelineId));
    return hub;
  };

  return {
    /**
     * Adds `listener` (committed node events) and `onStructure` (structure changes) to the pipeline's hub, opening
     * it if needed; the returned function removes them.
     */
    async attach(pipelineId: string, listener: Listener, onStructure?: StructureListener): Promise<() => Promise<void>> {
      for (;;) {
        const pending = hubs.get(pipelineId) ?? open(pipelineId);
        const hub = await pending;
        // The hub may have been closed by its last listener while this one waited for it to open.
        if (hubs.get(pipelineId) !== pending) continue;
        hub.listeners.add(listener);
        if (onStructure) hub.structureListeners.add(onStructure);
        return async () => {
          hub.listeners.delete(listener);
          if (onStructure) hub.structureListeners.delete(onStructure);
          if (hub.listeners.size === 0 && hubs.get(pipelineId) === pending) {
            hubs.delete(pipelineId);
            hub.structure.unsubscribe();
            await hub.replay.stop();
            hub.logger.info(hub.stats, "event hub closed");
          }
        };
      }
    },
  };
}

export type Hubs = ReturnType<typeof createHubs>;
