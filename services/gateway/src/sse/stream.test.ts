/**
 * One SSE stream over a real Node response and a client socket that stops reading: what the socket has not
 * taken counts against the stream's cap, so a large first frame (the snapshot) cannot sit in memory beside a
 * full queue.
 */
import http from "node:http";
import { connect, type AddressInfo, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { nodeResponseSink } from "./sink";
import { createSseStream } from "./stream";

const closers: Array<() => void> = [];
afterEach(() => {
  for (const close of closers.splice(0)) close();
});

/** A server whose one request becomes a stream, and a client that sends it and then never reads. */
async function streamToStalledClient(maxQueuedBytes: number) {
  let overflowed: number | undefined;
  const opened = new Promise<ReturnType<typeof createSseStream>>((resolve) => {
    const server = http.createServer((_req, res) => {
      resolve(
        createSseStream(nodeResponseSink(res, { "content-type": "text/event-stream" }), { maxQueuedBytes, onOverflow: (held) => void (overflowed = held) }),
      );
    });
    server.listen(0, "127.0.0.1");
    closers.push(() => server.close());
    server.once("listening", () => {
      const socket: Socket = connect((server.address() as AddressInfo).port, "127.0.0.1", () => {
        socket.write("GET /events HTTP/1.1\r\nhost: x\r\n\r\n");
        socket.pause();
      });
      closers.push(() => socket.destroy());
    });
  });
  return { stream: await opened, overflowed: () => overflowed };
}

describe("an SSE stream whose client stops reading", () => {
  it("counts a snapshot the socket has not taken against the cap: events past the cap's remainder end the stream", async () => {
    const CAP = 16 * 1024 * 1024;
    const { stream, overflowed } = await streamToStalledClient(CAP);
    // Bigger than what loopback's kernel buffers take, so part of it stays in this process.
    stream.write(Buffer.alloc(12 * 1024 * 1024, "s"));
    await new Promise((r) => setTimeout(r, 200));
    const frame = Buffer.alloc(64 * 1024, "e");
    let sent = 0;
    while (overflowed() === undefined && sent < 2 * CAP) {
      stream.write(frame);
      sent += frame.length;
    }
    expect(overflowed()).toBeGreaterThan(CAP);
    // Without the held snapshot counted, a full cap of events would queue on top of it.
    expect(sent).toBeLessThan(CAP - 1024 * 1024);
    expect(stream.ended).toBe(true);
  });

  it("writes a frame larger than the cap straight to a socket that has taken everything before it", async () => {
    const { stream, overflowed } = await streamToStalledClient(64 * 1024);
    stream.write(Buffer.alloc(256 * 1024, "s"));
    expect(overflowed()).toBeUndefined();
    expect(stream.ended).toBe(false);
  });
});
