/**
 * Work-queue messages a killed nats-server leaves where their consumer will never deliver them, and the consumer
 * reset that delivers them: on a nats-server of this machine started here (a private store directory, which a test
 * may SIGKILL, edit and start again), consumed by the consume helper the services use.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import type { ConsumerSpec } from "@vp/contracts";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { freePort } from "../../testkit/src/processes";
import { connectBus, type Bus } from "./connect";
import { consume, type ConsumerHandle } from "./consume";
import { watchStrandedIn } from "./stranded";
import { ensureConsumer, ensureStream } from "./topology";
import { testLogger, waitFor } from "./test-helpers";

const NATS_SERVER = process.env.NATS_SERVER_BIN ?? "/usr/sbin/nats-server";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const Payload = z.object({ n: z.number() });

let cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const step of cleanup.reverse()) await step();
  cleanup = [];
});

/** A nats-server with JetStream on a private store, which the test may stop, edit and start again. */
async function privateServer() {
  const dir = await mkdtemp(join(tmpdir(), "vp-nats-stranded-"));
  const port = await freePort();
  let proc: ChildProcess | undefined;
  const url = `nats://127.0.0.1:${port}`;
  const server = {
    url,
    dir,
    async start() {
      proc = spawn(NATS_SERVER, ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", dir], { stdio: "ignore" });
      await waitFor(
        async () =>
          (await connect({ servers: url })
            .then((nc) => nc.close().then(() => true))
            .catch(() => false)) || undefined,
        10_000,
        "nats-server",
      );
    },
    async stop(signal: NodeJS.Signals) {
      const p = proc;
      if (!p || p.exitCode !== null) return;
      await new Promise<void>((resolve) => {
        p.once("exit", () => resolve());
        p.kill(signal);
      });
    },
  };
  cleanup.push(async () => {
    await server.stop("SIGKILL");
    await rm(dir, { recursive: true, force: true });
  });
  await server.start();
  return server;
}

async function bus(url: string): Promise<Bus> {
  const b = await connectBus({ servers: url, name: "stranded-test", logger: testLogger() });
  cleanup.push(() => b.close().catch(() => undefined));
  return b;
}

const spec = (stream: string): ConsumerSpec => ({
  stream,
  durable: "worker",
  filterSubject: `${stream.toLowerCase()}.>`,
  ackWaitMs: 5_000,
  maxAttempts: 5,
  maxAckPending: 100,
});

async function workQueue(b: Bus, stream: string): Promise<ConsumerSpec> {
  await ensureStream(b, {
    name: stream,
    subjects: [`${stream.toLowerCase()}.>`],
    retention: "workqueue",
    maxAgeSeconds: 0,
    duplicateWindowSeconds: 120,
    replicas: 1,
  });
  const s = spec(stream);
  await ensureConsumer(b, s);
  return s;
}

/** The consume helper on the consumer, recording every payload it handles. */
function worker(b: Bus, s: ConsumerSpec): { handled: number[]; handle: ConsumerHandle } {
  const handled: number[] = [];
  const handle = consume({
    bus: b,
    consumer: s,
    schema: Payload,
    logger: testLogger(),
    handler: async (p) => void handled.push(p.n),
    pullExpiresMs: 1_000,
    stopTimeoutMs: 500,
  });
  cleanup.push(() => handle.stop());
  return { handled, handle };
}

async function send(b: Bus, s: ConsumerSpec, from: number, to: number): Promise<void> {
  const js = jetstream(b.nc);
  for (let n = from; n <= to; n++) await js.publish(`${s.stream.toLowerCase()}.job`, JSON.stringify({ n }));
}

/** Stops the server cleanly, throws away the stream's stored messages (its tail, and its last sequence), starts it again. */
async function loseStreamTail(server: Awaited<ReturnType<typeof privateServer>>, stream: string): Promise<void> {
  await server.stop("SIGTERM");
  const msgs = join(server.dir, "jetstream", "$G", "streams", stream, "msgs");
  for (const file of await readdir(msgs)) await rm(join(msgs, file), { force: true });
  await server.start();
}

describe("work-queue messages a consumer will never deliver", () => {
  it("a stream that lost its tail hands out sequence numbers its consumer has passed: the consumer is reset at once and they are delivered", async () => {
    const server = await privateServer();
    let b = await bus(server.url);
    const s = await workQueue(b, "TAIL");
    let w = worker(b, s);
    await send(b, s, 1, 5);
    await waitFor(() => w.handled.length === 5 || undefined, 10_000, "the first five handled");
    await w.handle.stop();
    await b.close();

    await loseStreamTail(server, "TAIL");
    b = await bus(server.url);
    const before = await b.jsm.consumers.info("TAIL", "worker");
    // What a killed nats-server 2.9 can come back with: a consumer past the stream's last sequence.
    expect(before.delivered.stream_seq).toBe(5);
    expect((await b.jsm.streams.info("TAIL")).state.last_seq).toBe(0);
    w = worker(b, s);
    await send(b, s, 6, 8);
    await sleep(1_500);
    expect(w.handled, "the consumer delivers messages stored at sequence numbers it has passed").toEqual([]);

    const resets = await watchStrandedIn(b, [s], new Set(["worker"])).pass();
    expect(resets).toEqual([
      { stream: "TAIL", consumer: "worker", reason: "stream-behind-consumer", delivered: 5, ackFloor: 5, streamLastSeq: 3, recreated: true },
    ]);
    await waitFor(() => w.handled.length === 3 || undefined, 10_000, "the three new messages handled");
    expect(w.handled.sort()).toEqual([6, 7, 8]);
    await waitFor(async () => (await b.jsm.streams.info("TAIL")).state.messages === 0 || undefined, 5_000, "the stream emptied");
  });

  it("messages stored below the ack floor are delivered after a reset confirmed on a second pass; a consumer its own service owns is created again by its consume loop", async () => {
    const server = await privateServer();
    let b = await bus(server.url);
    const s = await workQueue(b, "BELOW");
    let w = worker(b, s);
    await send(b, s, 1, 5);
    await waitFor(() => w.handled.length === 5 || undefined, 10_000, "the first five handled");
    await w.handle.stop();
    await b.close();

    await loseStreamTail(server, "BELOW");
    b = await bus(server.url);
    w = worker(b, s);
    // Seven new messages take sequences 1-7: the consumer delivers 6 and 7 (past what it had delivered), never 1-5.
    await send(b, s, 11, 17);
    await waitFor(() => w.handled.length === 2 || undefined, 10_000, "the two past the old delivered sequence");
    expect(w.handled.sort()).toEqual([16, 17]);
    await waitFor(async () => (await b.jsm.consumers.info("BELOW", "worker")).ack_floor.stream_seq === 7 || undefined, 5_000, "ack floor 7");

    // The watcher does not own this consumer: it deletes it, and the consume loop creates it again from its spec.
    const watch = watchStrandedIn(b, [s], new Set());
    expect(await watch.pass(), "one sighting is not enough").toEqual([]);
    expect(await watch.pass()).toEqual([
      { stream: "BELOW", consumer: "worker", reason: "stored-below-ack-floor", delivered: 7, ackFloor: 7, streamLastSeq: 7, strandedSeq: 1, recreated: false },
    ]);
    await waitFor(() => w.handled.length === 7 || undefined, 20_000, "the five stranded messages handled");
    expect(w.handled.sort()).toEqual([11, 12, 13, 14, 15, 16, 17]);
    expect((await b.jsm.consumers.info("BELOW", "worker")).config.filter_subject).toBe("below.>");
    await waitFor(async () => (await b.jsm.streams.info("BELOW")).state.messages === 0 || undefined, 5_000, "the stream emptied");
  });

  it("a busy consumer acknowledging thousands of messages while the watcher runs is never reset", async () => {
    const server = await privateServer();
    const b = await bus(server.url);
    const s = await workQueue(b, "BUSY");
    const w = worker(b, s);
    const watch = watchStrandedIn(b, [s], new Set(["worker"]));
    const resets: unknown[] = [];
    let sending = true;
    const passes = (async () => {
      let count = 0;
      while (sending || w.handled.length < 3000) {
        resets.push(...(await watch.pass()));
        count++;
        await sleep(20);
      }
      return count;
    })();
    await send(b, s, 1, 3000);
    sending = false;
    expect(await passes).toBeGreaterThan(10);
    expect(resets).toEqual([]);
    expect(new Set(w.handled).size).toBe(3000);
  }, 60_000);

  it("nats-server SIGKILLed under load: every message published after the restart is handled and the stream empties", async () => {
    const server = await privateServer();
    let b = await bus(server.url);
    const s = await workQueue(b, "KILLED");
    let w = worker(b, s);
    let sending = true;
    const load = (async () => {
      const js = jetstream(b.nc);
      for (let n = 1; sending; n++) await js.publish("killed.job", JSON.stringify({ n }), { timeout: 500 }).catch(() => undefined);
    })();
    await sleep(1_500);
    await server.stop("SIGKILL");
    sending = false;
    await load;
    await w.handle.stop();
    await b.close();
    await server.start();

    b = await bus(server.url);
    w = worker(b, s);
    const watch = watchStrandedIn(b, [s], new Set(["worker"]));
    await send(b, s, 1_000_001, 1_000_200);
    const after = Array.from({ length: 200 }, (_, i) => 1_000_001 + i);
    await waitFor(
      async () => {
        await watch.pass();
        const state = (await b.jsm.streams.info("KILLED")).state;
        return (state.messages === 0 && after.every((n) => w.handled.includes(n))) || undefined;
      },
      30_000,
      "every message sent after the restart handled and the stream empty",
    );
  }, 60_000);
});
