import { ServerResponse } from "node:http";
import type { Context } from "hono";
import { RESPONSE_ALREADY_SENT } from "@hono/node-server/utils/response";

/**
 * Where one SSE stream's bytes go: the Node response itself (production: no web stream per write), or a
 * ReadableStream when there is no Node response (`app.request()` in tests). Writes are whole frames.
 */
export interface SseSink {
  /** Hands `chunk` (a list: one frame in parts) to the socket (or the stream's queue). Call only while `needsDrain` is false. */
  write(chunk: Buffer | Buffer[]): void;
  /** The socket has not taken what was written yet: queue, and write again on `onDrain`. */
  readonly needsDrain: boolean;
  /** Bytes written that the socket has not taken yet (held in this process's memory). */
  readonly bufferedBytes: number;
  onDrain(listener: () => void): void;
  /** The client went away (or the sink ended). Called once. */
  onClose(listener: () => void): void;
  /** Writes `last` (if any) and ends the response. */
  end(last?: Buffer): void;
  /** Ends at once, discarding what the client has not taken: for a client that stopped reading. */
  destroy(): void;
}

/** What every SSE response carries besides the headers the middlewares set (CORS, x-request-id). */
const SSE_HEADERS = {
  "content-type": "text/event-stream",
  "cache-control": "no-cache",
  // The connection ends with the stream: a client must not reuse it for another request just as a gateway that is
  // shutting down ends its streams and closes its connections (that request would fail).
  connection: "close",
  // nginx (ingress) must not buffer the stream.
  "x-accel-buffering": "no",
};

/**
 * The response headers: what the middlewares set so far on the context's response, then the SSE ones.
 * `vary: origin` is what the CORS middleware appends after the handler returns, too late for a response
 * whose head is written by the handler itself.
 */
export function sseHeaders(fromMiddlewares: Headers): Record<string, string> {
  const headers: Record<string, string> = {};
  fromMiddlewares.forEach((value, key) => {
    if (key !== "content-type" && key !== "content-length") headers[key] = value;
  });
  if (headers["access-control-allow-origin"] && !/\borigin\b/i.test(headers.vary ?? "")) headers.vary = headers.vary ? `${headers.vary}, Origin` : "Origin";
  return { ...headers, ...SSE_HEADERS };
}

/** Writes the head now and returns a sink over the Node response. */
export function nodeResponseSink(res: ServerResponse, headers: Record<string, string>): SseSink {
  res.writeHead(200, headers);
  res.flushHeaders();
  // A write racing the client's disconnect errors on the socket; the 'close' below is what matters.
  res.on("error", () => undefined);
  return {
    write: (chunk) => {
      if (!Array.isArray(chunk)) return void res.write(chunk);
      // One frame in parts leaves in one socket write, the shared parts uncopied.
      res.cork();
      for (const part of chunk) res.write(part);
      process.nextTick(() => res.uncork());
    },
    get needsDrain() {
      return res.writableNeedDrain;
    },
    get bufferedBytes() {
      return res.writableLength;
    },
    onDrain: (listener) => void res.on("drain", listener),
    onClose: (listener) => void res.once("close", listener),
    end: (last) => void (last ? res.end(last) : res.end()),
    destroy: () => void res.destroy(),
  };
}

const HIGH_WATER_MARK = 64 * 1024;

/** A sink whose bytes come out of `body` (a Response body), with a 64 KiB queue as its "socket". */
export function readableStreamSink(): { sink: SseSink; body: ReadableStream<Uint8Array> } {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let ended = false;
  const drainListeners: Array<() => void> = [];
  const closeListeners: Array<() => void> = [];
  const close = () => {
    if (ended) return;
    ended = true;
    for (const listener of closeListeners.splice(0)) listener();
  };
  const body = new ReadableStream<Uint8Array>(
    {
      start: (c) => void (controller = c),
      pull: () => {
        for (const listener of drainListeners) listener();
      },
      cancel: close,
    },
    new ByteLengthQueuingStrategy({ highWaterMark: HIGH_WATER_MARK }),
  );
  const sink: SseSink = {
    write: (chunk) => {
      if (!ended) controller.enqueue(Array.isArray(chunk) ? Buffer.concat(chunk) : chunk);
    },
    get needsDrain() {
      return !ended && (controller.desiredSize ?? 1) <= 0;
    },
    get bufferedBytes() {
      return ended ? 0 : Math.max(0, HIGH_WATER_MARK - (controller.desiredSize ?? HIGH_WATER_MARK));
    },
    onDrain: (listener) => void drainListeners.push(listener),
    onClose: (listener) => void closeListeners.push(listener),
    end: (last) => {
      if (ended) return;
      if (last) controller.enqueue(last);
      controller.close();
      close();
    },
    destroy: () => {
      if (ended) return;
      controller.error(new Error("SSE stream destroyed"));
      close();
    },
  };
  return { sink, body };
}

/** The Node response under @hono/node-server, if there is one (`c.env.outgoing`). */
export function nodeResponseOf(env: unknown): ServerResponse | undefined {
  const outgoing = (env as { outgoing?: unknown } | undefined)?.outgoing;
  return outgoing instanceof ServerResponse ? outgoing : undefined;
}

/**
 * What a handler that wrote the Node response itself returns. @hono/node-server skips a response carrying
 * RESPONSE_ALREADY_SENT's header, except when it takes it for one of its lightweight "cached" responses (null
 * body, not materialized yet): that one it writes again, and writeHead after the head went out destroys the
 * stream. Hono re-creates the handler's response as exactly that whenever a middleware read `c.res` before the
 * handler (CORS does, and so does sseHeaders). Reading `body` materializes it, so it is skipped.
 */
export function responseAlreadySent(c: Context): Response {
  c.res = RESPONSE_ALREADY_SENT;
  void c.res.body;
  return c.res;
}
