import type { SseSink } from "./sink";

/** Sent before ending a stream the gateway gives up on (shutdown, a client too far behind): reconnect in 1 s. */
export const RETRY_SOON = Buffer.from("retry: 1000\n\n");

export interface SseStreamOptions {
  /**
   * Most bytes one stream may hold for a client that does not read, counting what its socket has not taken yet
   * (the snapshot included); a write beyond it ends the stream instead (see overflow).
   */
  maxQueuedBytes: number;
  /** Called once when the stream ends because its client fell too far behind. */
  onOverflow?: (queuedBytes: number) => void;
}

/**
 * One client's stream over a sink: whole frames in order, one socket write per call while the socket keeps up;
 * while it does not (`needsDrain`), frames queue and leave together, concatenated, on 'drain'.
 *
 * A client that is behind and would hold more than `maxQueuedBytes` unread (queued here or still in the socket's
 * buffer: a snapshot it has not taken counts like any frame) is not dropped from silently: its stream ends with
 * `retry:` after the frames the socket already took, and what was queued is discarded. The socket only ever
 * got whole frames, so the browser's Last-Event-ID is the id of the last frame it received; it reconnects
 * with it and the gateway resumes from JetStream right after that id (no gap, no duplicate), at the pace the
 * client reads instead of in the gateway's memory.
 */
export function createSseStream(sink: SseSink, options: SseStreamOptions) {
  let queue: Buffer[] = [];
  let queuedBytes = 0;
  let ended = false;
  let destroyTimer: NodeJS.Timeout | undefined;
  let resolveClosed!: () => void;
  const closed = new Promise<void>((resolve) => (resolveClosed = resolve));

  const takeQueue = () => {
    const out = queue.length === 1 ? queue[0]! : Buffer.concat(queue, queuedBytes);
    queue = [];
    queuedBytes = 0;
    return out;
  };

  sink.onClose(() => {
    ended = true;
    queue = [];
    queuedBytes = 0;
    clearTimeout(destroyTimer);
    resolveClosed();
  });
  sink.onDrain(() => {
    if (!ended && queue.length > 0) sink.write(takeQueue());
  });

  const end = (last?: Buffer) => {
    if (ended) return;
    ended = true;
    const out = queue.length > 0 ? (last ? Buffer.concat([...queue, last]) : takeQueue()) : last;
    queue = [];
    queuedBytes = 0;
    resolveClosed();
    sink.end(out);
    // A client that does not read would keep the socket (and the frames it has not taken) forever.
    destroyTimer = setTimeout(() => sink.destroy(), 30_000);
    destroyTimer.unref();
  };

  return {
    /** Resolves when the client went away or the stream ended. */
    closed,
    get ended() {
      return ended;
    },
    /**
     * Sends whole frames (the caller keeps them whole): now, or queued behind what the socket has not taken. A list
     * is one frame in parts (a shared Buffer in the middle is written as is, never copied).
     */
    write(frames: Buffer | Buffer[]) {
      if (ended) return;
      const parts = Array.isArray(frames) ? frames : [frames];
      if (queue.length === 0 && !sink.needsDrain) {
        sink.write(frames);
        return;
      }
      const length = parts.reduce((n, part) => n + part.length, 0);
      // Behind: what the socket has not taken (a snapshot still in its buffer, say) counts with the queue.
      const held = sink.bufferedBytes + queuedBytes + length;
      if (held > options.maxQueuedBytes) {
        // Discard the queue and these frames (JetStream holds them) and end with a retry hint: see the type's comment.
        queue = [];
        queuedBytes = 0;
        end(RETRY_SOON);
        options.onOverflow?.(held);
        return;
      }
      queue.push(...parts);
      queuedBytes += length;
    },
    /** Writes what is queued, then `last`, and ends the response. */
    end,
  };
}

export type SseStream = ReturnType<typeof createSseStream>;
