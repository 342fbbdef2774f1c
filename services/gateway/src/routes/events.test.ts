/**
 * The SSE write path over a real HTTP server (@hono/node-server, so streams are written to Node's response),
 * against the real Postgres and NATS: events are published to VP_EVENTS as the state-writer publishes them.
 * - Many clients get byte-identical frames (one encoding per event, one shared Buffer per flush).
 * - A client that stops reading is ended with `retry:` once it holds more than the cap, and resuming with its
 *   Last-Event-ID gives it exactly the events it had not got: no gap, no duplicate. The other clients go on.
 */
import { randomUUID } from "node:crypto";
import { get, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { Hono } from "hono";
import { serve, type ServerType } from "@hono/node-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { publish } from "@vp/bus";
import { NodeChanged } from "@vp/contracts";
import { createLocalStorage } from "@vp/storage";
import { createLogger } from "@vp/telemetry";
import { createTestBus, createTestDatabase, insertPipelineFixture, TEST_AUTH, type TestBus, type TestDatabase } from "@vp/testkit";
import { createApp } from "../app";
import { createGatewayAuth } from "../auth";
import type { GatewayDeps } from "../deps";
import { eventRoutes } from "./events";

const ORIGIN = "http://localhost:3065";
const BASE = "/v1/video_production/pipelines";

let db: TestDatabase;
let bus: TestBus;
let deps: GatewayDeps;
const servers: ServerType[] = [];
const logs: Array<Record<string, unknown>> = [];
const clients: Array<{ close(): void }> = [];

async function listen(app: Hono): Promise<string> {
  const server = await new Promise<ServerType>((resolve) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, () => resolve(s));
  });
  servers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  db = await createTestDatabase();
  bus = await createTestBus();
  const logger = createLogger({ service: "gateway-test", level: "info", destination: { write: (line: string) => void logs.push(JSON.parse(line)) } });
  deps = {
    reader: db.pools.reader,
    editor: db.pools.editor,
    bus: bus.bus,
    topology: bus.topology,
    storage: createLocalStorage({ root: "/nonexistent-unused" }),
    logger,
    auth: createGatewayAuth(
      { mode: "jwt", secret: TEST_AUTH.secret, issuer: TEST_AUTH.issuer, audience: TEST_AUTH.audience, devLogin: false, devLoginTtlSeconds: 3600 },
      logger,
    ),
    maxUploadBytes: 1024,
    executeVerdictTimeoutMs: 1000,
    corsOrigins: [ORIGIN],
    closing: new Promise(() => {}),
  };
});

afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  await bus?.cleanup();
  await db?.drop();
});

/** Publishes `count` NodeChanged events of pipeline P (each about `padBytes` long); resolves with their sequences. */
async function publishEvents(P: string, count: number, padBytes = 0): Promise<number[]> {
  const seqs: number[] = [];
  for (let i = 0; i < count; i += 10) {
    const acks = await Promise.all(
      Array.from({ length: Math.min(10, count - i) }, (_, k) => {
        const n = i + k;
        const event: NodeChanged = {
          v: 1,
          kind: "node",
          eventId: randomUUID(),
          pipelineId: P,
          nodeId: `n${n % 7}`,
          type: "asset",
          status: "completed",
          stateVersion: n + 1,
          metadata: { completedAt: new Date().toISOString() },
          output: null,
          pipelineMetadata: padBytes ? { pad: "x".repeat(padBytes) } : { totalCost: n },
          at: new Date().toISOString(),
        };
        return publish(bus.bus, bus.topology.messages.events(P), event, { msgId: event.eventId });
      }),
    );
    seqs.push(...acks.map((a) => a.seq));
  }
  return seqs.sort((a, b) => a - b);
}

interface Frame {
  event?: string;
  id?: string;
  data?: string;
  retry?: string;
}

/** A raw SSE client over node:http that keeps every byte it receives, and can stop reading (a stalled browser). */
function rawSse(url: string, headers: Record<string, string> = {}) {
  const chunks: Buffer[] = [];
  let response: IncomingMessage | undefined;
  let ended = false;
  let pauseAfterSnapshot = false;
  const request = get(url, { headers: { accept: "text/event-stream", ...headers } });
  const opened = new Promise<IncomingMessage>((resolve, reject) => {
    request.on("error", reject);
    request.on("response", (res) => {
      response = res;
      res.on("data", (chunk: Buffer) => {
        chunks.push(chunk);
        if (pauseAfterSnapshot && client.text().includes("event: snapshot") && client.text().includes("\n\n")) res.pause();
      });
      res.on("end", () => void (ended = true));
      res.on("close", () => void (ended = true));
      res.on("error", () => undefined);
      resolve(res);
    });
  });
  request.on("error", () => undefined);
  const client = {
    opened,
    get ended() {
      return ended;
    },
    bytes: () => Buffer.concat(chunks),
    text: () => Buffer.concat(chunks).toString("utf8"),
    /** Complete frames (comments dropped). */
    frames(): Frame[] {
      const text = client.text();
      const blocks = text
        .slice(0, text.lastIndexOf("\n\n") + 2)
        .split("\n\n")
        .filter(Boolean);
      return blocks
        .map((block) => {
          const frame: Frame = {};
          for (const line of block.split("\n")) {
            if (line.startsWith(":")) continue;
            const i = line.indexOf(":");
            frame[line.slice(0, i) as keyof Frame] = line.slice(i + 1).trimStart();
          }
          return frame;
        })
        .filter((f) => Object.keys(f).length > 0);
    },
    nodeSeqs: () =>
      client
        .frames()
        .filter((f) => f.event === "node")
        .map((f) => Number(f.id)),
    stopReadingAfterSnapshot: () => void (pauseAfterSnapshot = true),
    resume: () => {
      pauseAfterSnapshot = false;
      response?.resume();
    },
    async waitFor(predicate: () => boolean, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (!predicate()) {
        if (Date.now() > deadline) throw new Error(`SSE condition not met in ${timeoutMs} ms; got ${client.text().length} chars, ended ${ended}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    close: () => request.destroy(),
  };
  clients.push(client);
  return client;
}
type RawSse = ReturnType<typeof rawSse>;

const snapshotOf = (c: RawSse) => c.frames().find((f) => f.event === "snapshot");
/** The bytes after the snapshot frame. */
const afterSnapshot = (c: RawSse) => {
  const bytes = c.bytes();
  const start = bytes.indexOf("event: snapshot");
  return bytes.subarray(bytes.indexOf("\n\n", start) + 2);
};

describe("SSE write path (Node response)", () => {
  it("writes the same bytes to every client, with the SSE and middleware headers", async () => {
    const url = await listen(createApp(deps));
    const { id: P } = await insertPipelineFixture(db.admin, { title: "sse identical bytes" });
    const { token } = await deps.auth.tokens.mintStreamToken("sse-test", P);
    const events = `${url}${BASE}/${P}/events?token=${encodeURIComponent(token)}`;
    const many = Array.from({ length: 20 }, (_, i) => rawSse(events, i === 0 ? { origin: ORIGIN } : {}));
    const [first] = await Promise.all(many.map((c) => c.opened));
    expect(first!.statusCode).toBe(200);
    expect(first!.headers).toMatchObject({
      "content-type": "text/event-stream",
      "cache-control": "no-cache",
      connection: "close",
      "x-accel-buffering": "no",
      "access-control-allow-origin": ORIGIN,
      "access-control-allow-credentials": "true",
      vary: "Origin",
    });
    expect(first!.headers["x-request-id"]).toBeTruthy();
    await Promise.all(many.map((c) => c.waitFor(() => snapshotOf(c) !== undefined)));

    // In bursts, like a group commit's events.
    const seqs = await publishEvents(P, 200);
    const last = seqs.at(-1)!;
    await Promise.all(many.map((c) => c.waitFor(() => c.nodeSeqs().at(-1) === last)));

    const reference = afterSnapshot(many[0]!);
    for (const c of many) expect(afterSnapshot(c).equals(reference)).toBe(true);
    const frames = many[0]!.frames().filter((f) => f.event === "node");
    expect(frames.map((f) => Number(f.id))).toEqual(seqs);
    // The event's content as published (the editor parses it).
    for (const f of frames) expect(NodeChanged.parse(JSON.parse(f.data!))).toMatchObject({ pipelineId: P, kind: "node" });
    expect(
      reference
        .toString()
        .split("\n\n")
        .filter(Boolean)
        .every((frame) => /^event: node\ndata: \{.*\}\nid: \d+$/.test(frame)),
    ).toBe(true);
  });

  it("ends a client that stopped reading with retry after the cap; it resumes with Last-Event-ID without gap or duplicate", async () => {
    const MAX = 256 * 1024;
    const app = new Hono().route(BASE, eventRoutes(deps, { maxQueuedBytes: MAX }));
    const url = await listen(app);
    const { id: P } = await insertPipelineFixture(db.admin, { title: "sse slow client" });
    const events = `${url}${BASE}/${P}/events`;
    const fast = rawSse(events);
    const slow = rawSse(events);
    slow.stopReadingAfterSnapshot();
    await Promise.all([fast, slow].map((c) => c.waitFor(() => snapshotOf(c) !== undefined)));
    const snapshotSeq = Number(snapshotOf(slow)!.id);

    // 64 KB events until the slow client's socket buffers and then its queue are full (the kernel's take MBs).
    const overflowed = () => logs.some((l) => l.msg?.toString().startsWith("SSE client too far behind") && l.pipelineId === P);
    const seqs: number[] = [];
    while (!overflowed()) {
      if (seqs.length >= 1500) throw new Error("the slow client's stream never overflowed");
      seqs.push(...(await publishEvents(P, 20, 64 * 1024)));
      await fast.waitFor(() => fast.nodeSeqs().at(-1) === seqs.at(-1), 60_000);
    }
    // Committed after the slow client was let go.
    seqs.push(...(await publishEvents(P, 30)));
    await fast.waitFor(() => fast.nodeSeqs().at(-1) === seqs.at(-1));
    expect(fast.ended).toBe(false);
    expect(fast.nodeSeqs()).toEqual(seqs);

    // The slow client reads again: whole frames, then the retry hint, then the end of the response.
    slow.resume();
    await slow.waitFor(() => slow.ended);
    expect(slow.text().endsWith("retry: 1000\n\n")).toBe(true);
    const before = slow.nodeSeqs();
    expect(before.length).toBeGreaterThan(0);
    expect(before.length).toBeLessThan(seqs.length);
    const lastEventId = String(before.at(-1));

    const resumed = rawSse(events, { "last-event-id": lastEventId });
    await resumed.waitFor(() => resumed.nodeSeqs().at(-1) === seqs.at(-1), 60_000);
    expect(resumed.frames().some((f) => f.event === "snapshot")).toBe(false);
    const all = [...before, ...resumed.nodeSeqs()];
    expect(all, "exactly every event after the snapshot, in order, once").toEqual(seqs.filter((s) => s > snapshotSeq));
  }, 180_000);
});
