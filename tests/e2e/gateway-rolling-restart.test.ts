/**
 * Rolling restart of the gateway behind a load balancer. Two gateway processes sit behind a small round-robin TCP
 * proxy standing in for the Kubernetes Service: it sends each new connection to a backend whose GET /ready last
 * answered 200 (polled every 250 ms, as endpoints follow readiness) and refuses nothing itself. While clients keep
 * sending requests (some on keep-alive connections, some on a new connection each) and several SSE clients
 * stream a pipeline whose asset nodes keep executing, each gateway in turn gets SIGTERM while its replacement
 * starts. Every request gets its normal answer, and every SSE client ends each stream with a `retry:` hint and
 * resumes on the other gateway with Last-Event-ID: the ids it gets are exactly what VP_EVENTS holds for the
 * pipeline after its snapshot (no hole, no duplicate).
 */
import { request as httpRequest } from "node:http";
import { createServer, connect, type Server, type Socket } from "node:net";
import { createParser } from "eventsource-parser";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { replayEvents } from "@vp/bus";
import { freePort, mintStreamToken, startService, startTestStack, testToken, type ServiceProcess, type TestStack } from "@vp/testkit";
import { client, type Client } from "./helpers";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** A request that got no answer at all (refused, reset): status 0 and the error with its cause. */
const asFailure = (e: unknown) => ({ status: 0, headers: undefined, body: `${String(e)} (${String((e as { cause?: unknown }).cause)})` as any });
const SSE_CLIENTS = 6;

let t: TestStack;
let proxy: Proxy;
const gateways: ServiceProcess[] = [];

type Backend = { name: string; port: number; ready: boolean };

/** Round-robin TCP proxy over the backends whose /ready answers 200; remembers which backend got each connection. */
interface Proxy {
  port: number;
  backends: Backend[];
  /** The head of each proxied request and the backend it went to. */
  requests: Array<{ backend: string; head: string }>;
  /** Connections a backend refused or broke before answering. */
  refused: Array<{ backend: string; error: string }>;
  add(backend: Backend): void;
  close(): Promise<void>;
}

async function startProxy(): Promise<Proxy> {
  const port = await freePort();
  const backends: Backend[] = [];
  const requests: Proxy["requests"] = [];
  const refused: Proxy["refused"] = [];
  const sockets = new Set<Socket>();
  let next = 0;
  const server: Server = createServer((downstream) => {
    const ready = backends.filter((b) => b.ready);
    const backend = ready[next++ % Math.max(1, ready.length)];
    if (!backend) return void downstream.destroy();
    const upstream = connect(backend.port, "127.0.0.1");
    sockets.add(downstream).add(upstream);
    let answered = false;
    // Every request line (a keep-alive connection carries several): which gateway each request went to.
    downstream.on("data", (chunk: Buffer) => {
      const text = chunk.toString("latin1");
      for (const m of text.matchAll(/(?:GET|POST|PUT|PATCH|DELETE) \S+ HTTP\/1\.1\r\n(?:[^\r\n]*\r\n)*?\r\n/g))
        requests.push({ backend: backend.name, head: m[0] });
    });
    upstream.once("data", () => (answered = true));
    upstream.on("error", (error) => {
      if (!answered) refused.push({ backend: backend.name, error: error.message });
      downstream.destroy();
    });
    downstream.on("error", () => upstream.destroy());
    upstream.on("close", () => {
      sockets.delete(upstream);
      downstream.end();
    });
    downstream.on("close", () => {
      sockets.delete(downstream);
      upstream.destroy();
    });
    downstream.pipe(upstream);
    upstream.pipe(downstream);
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  const probe = (b: Backend) =>
    new Promise<boolean>((resolve) => {
      const req = httpRequest({ host: "127.0.0.1", port: b.port, path: "/ready", agent: false, timeout: 2000 }, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      });
      req.on("error", () => resolve(false));
      req.on("timeout", () => req.destroy());
      req.end();
    });
  let polling = true;
  const poller = (async () => {
    while (polling) {
      await Promise.all(backends.map(async (b) => (b.ready = await probe(b))));
      await sleep(250);
    }
  })();
  return {
    port,
    backends,
    requests,
    refused,
    add: (b) => void backends.push(b),
    close: async () => {
      polling = false;
      await poller;
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function startGateway(name: string): Promise<ServiceProcess> {
  const port = await freePort();
  // The gateway's own defaults for draining (the test stack turns the drain off for its other tests).
  const { SHUTDOWN_DRAIN_DELAY_MS: _off, ...env } = t.stack.env;
  const gateway = await startService("gateway", { ...env, PORT: String(port) });
  gateways.push(gateway);
  const backend: Backend = { name, port, ready: false };
  proxy.add(backend);
  const deadline = Date.now() + 30_000;
  while (!backend.ready) {
    if (Date.now() > deadline) throw new Error(`${name} never became ready behind the proxy`);
    await sleep(50);
  }
  return gateway;
}

/**
 * What a browser's EventSource does: opens the stream (with a fresh stream token), and when it ends reconnects
 * after the last `retry:` hint with the id of the last event it got as Last-Event-ID. Every failure is kept.
 */
function resumingSse(eventsUrl: string, name: string) {
  const events: Array<{ event: string; id?: string; data: string }> = [];
  const streams: Array<{ tag: string; endedWithRetry?: boolean; opened: number; ended?: number }> = [];
  const failures: string[] = [];
  let stopped = false;
  const controller = new AbortController();
  const lastEventId = () => [...events].reverse().find((e) => e.id !== undefined)?.id;
  const done = (async () => {
    let retryMs = 3000;
    while (!stopped) {
      try {
        const token = await mintStreamToken(eventsUrl);
        const stream: (typeof streams)[number] = { tag: `${name}.${streams.length}`, opened: Date.now() };
        streams.push(stream);
        const last = lastEventId();
        const response = await fetch(`${eventsUrl}?token=${encodeURIComponent(token)}`, {
          // x-test-stream: tells the proxy's log which stream a request opens (the gateway ignores it).
          headers: { accept: "text/event-stream", "x-test-stream": stream.tag, ...(last ? { "last-event-id": last } : {}) },
          signal: controller.signal,
        });
        if (response.status !== 200 || !response.body) throw new Error(`SSE answered ${response.status}: ${await response.text()}`);
        let lastWasRetry = false;
        const parser = createParser({
          onEvent: (m) => {
            lastWasRetry = false;
            events.push({ event: m.event ?? "message", id: m.id, data: m.data });
          },
          onRetry: (ms) => {
            retryMs = ms;
            lastWasRetry = true;
          },
        });
        const decoder = new TextDecoder();
        for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) parser.feed(decoder.decode(chunk, { stream: true }));
        stream.endedWithRetry = lastWasRetry;
        stream.ended = Date.now();
      } catch (error) {
        if (stopped) break;
        failures.push(String(error));
      }
      if (!stopped) await sleep(retryMs);
    }
  })();
  return {
    events,
    streams,
    failures,
    nodeSeqs: () => events.filter((e) => e.event === "node").map((e) => Number(e.id)),
    async stop() {
      stopped = true;
      controller.abort();
      await done;
    },
  };
}

beforeAll(async () => {
  t = await startTestStack({ prefix: "vp-rolling-", jobAckWaitMs: 10_000, services: ["state-writer", "scheduler", "executor-ffmpeg"] });
  proxy = await startProxy();
}, 180_000);

afterAll(async () => {
  await Promise.all(gateways.map((g) => g.stop()));
  await proxy?.close();
  await t?.cleanup();
});

describe("rolling restart of the gateway behind a load balancer", () => {
  it("refuses no request and every SSE client resumes on the other gateway with Last-Event-ID, with no gap or duplicate", async () => {
    const a = await startGateway("a");
    const b = await startGateway("b");
    const base = `http://127.0.0.1:${proxy.port}`;
    const api: Client = client(base);
    const { pipeline } = await api.ok("POST", "/pipelines", { title: "rolling restart" });
    const P = pipeline.id as string;
    const eventsUrl = `${api.root}/pipelines/${P}/events`;

    const failures: string[] = [];
    let answered = 0;
    let t0 = Date.now();
    let stopping = false;
    const bearer = await testToken();

    // Events keep coming: two producers each add a text asset node and execute it, again and again.
    let executions = 0;
    const producers = ["p", "q"].map(async (producer) => {
      for (let k = 0; !stopping; k++) {
        const nodeId = `${producer}${k}`;
        const created = await api
          .call("POST", `/pipelines/${P}/nodes`, { id: nodeId, title: nodeId, type: "asset", asset: { type: "text", content: `note ${nodeId}` } })
          .catch(asFailure);
        if (created.status !== 201) {
          failures.push(`create ${nodeId}: ${created.status} ${JSON.stringify(created.body)}`);
          continue;
        }
        const res = await api.call("POST", `/pipelines/${P}/nodes/${nodeId}/execute`).catch(asFailure);
        if (res.status !== 200 && res.status !== 202) {
          failures.push(`execute ${nodeId}: ${res.status} ${JSON.stringify(res.body)}`);
          continue;
        }
        executions++;
        for (;;) {
          const got = await api.call("GET", `/pipelines/${P}/nodes/${nodeId}`).catch(asFailure);
          if (got.status !== 200) failures.push(`GET node ${nodeId}: ${got.status} ${JSON.stringify(got.body)}`);
          else if (["completed", "failed"].includes(got.body.node.status)) break;
          await sleep(100);
        }
      }
    });
    // Readers on keep-alive connections (fetch) and on a new connection per request (as many short-lived clients).
    const keepAliveReaders = Array.from({ length: 3 }, async () => {
      while (!stopping) {
        const res = await api.call("GET", `/pipelines/${P}`).catch(asFailure);
        if (res.status !== 200 || res.body?.pipeline?.id !== P) failures.push(`GET pipeline (keep-alive): ${res.status} ${JSON.stringify(res.body)}`);
        else answered++;
        await sleep(20);
      }
    });
    const freshReaders = Array.from({ length: 3 }, async () => {
      while (!stopping) {
        const res = await new Promise<{ status: number; body: string }>((resolve) => {
          const req = httpRequest(
            { host: "127.0.0.1", port: proxy.port, path: `/v1/video_production/pipelines/${P}`, agent: false, headers: { authorization: `Bearer ${bearer}` } },
            (r) => {
              let body = "";
              r.setEncoding("utf8").on("data", (c: string) => (body += c));
              r.on("end", () => resolve({ status: r.statusCode ?? 0, body }));
              r.on("error", (e) => resolve({ status: 0, body: String(e) }));
            },
          );
          req.on("error", (e) => resolve({ status: 0, body: String(e) }));
          req.end();
        });
        if (res.status !== 200 || !res.body.includes(P)) failures.push(`GET pipeline (new connection): ${res.status} ${res.body.slice(0, 200)}`);
        else answered++;
        await sleep(20);
      }
    });

    const sse = Array.from({ length: SSE_CLIENTS }, (_, i) => resumingSse(eventsUrl, `c${i}`));
    const deadline = Date.now() + 60_000;
    while (!sse.every((c) => c.events.some((e) => e.event === "snapshot"))) {
      if (Date.now() > deadline) throw new Error("not every SSE client got its snapshot");
      await sleep(100);
    }
    await sleep(1000);

    // Roll: each old gateway gets SIGTERM while its replacement starts.
    const roll = async (old: ServiceProcess, name: string) => {
      const answeredBefore = answered;
      marks[`sigterm ${name}`] = Date.now() - t0;
      old.kill("SIGTERM");
      void old.exited.then(() => (marks[`exit ${name}`] = Date.now() - t0));
      const [replacement, exit] = await Promise.all([startGateway(name), old.exited]);
      expect(exit, `${old.pid} exits cleanly`).toEqual({ code: 0, signal: null });
      expect(answered, "requests kept being answered during the roll").toBeGreaterThan(answeredBefore);
      return replacement;
    };
    const executionsBefore = executions;
    const seqAtRoll = (await t.bus.bus.jsm.streams.info(t.bus.topology.streams.events.name)).state.last_seq;
    t0 = Date.now();
    const marks: Record<string, number> = {};
    await roll(a, "a2");
    await sleep(1000);
    await roll(b, "b2");
    await sleep(2000);
    expect(executions, `nodes kept executing during the roll; failures: ${failures.slice(0, 5).join("; ")}`).toBeGreaterThan(executionsBefore);

    stopping = true;
    await Promise.all([...producers, ...keepAliveReaders, ...freshReaders]);

    // What VP_EVENTS holds for the pipeline, read from JetStream directly, once nothing more is committed.
    const stored: number[] = [];
    const reference = replayEvents(t.bus.bus, {
      stream: t.bus.topology.streams.events.name,
      subject: t.bus.topology.subjects.events(P),
      startSeq: 1,
      onEvent: (seq) => void stored.push(seq),
    });
    for (let seen = -1; seen !== stored.length; ) {
      seen = stored.length;
      await sleep(1500);
    }
    await reference.stop();
    const lastStored = stored.at(-1)!;
    expect(stored.filter((seq) => seq > seqAtRoll).length, "events kept being produced during the roll").toBeGreaterThan(20);
    const caughtUp = Date.now() + 30_000;
    while (!sse.every((c) => c.nodeSeqs().includes(lastStored))) {
      if (Date.now() > caughtUp) break;
      await sleep(100);
    }
    await Promise.all(sse.map((c) => c.stop()));

    expect(failures, "every request got its normal answer").toEqual([]);
    expect(proxy.refused, "no connection was refused or broken by a gateway").toEqual([]);
    for (const old of [a, b])
      expect(
        old.logs.some((l) => l.msg === "draining: /ready answers 503, still serving"),
        "drained before closing",
      ).toBe(true);

    const terminated = new Set(["a", "b"]);
    for (const [i, c] of sse.entries()) {
      expect(c.failures, `SSE client ${i}: no failed (re)connect`).toEqual([]);
      const snapshots = c.events.filter((e) => e.event === "snapshot");
      expect(snapshots, `SSE client ${i}: one snapshot, then only resumes`).toHaveLength(1);
      const expected = stored.filter((seq) => seq > Number(snapshots[0]!.id));
      expect(c.nodeSeqs(), `SSE client ${i}: exactly the stored events after its snapshot`).toEqual(expected);
      // Each stream a terminating gateway served ended cleanly with a retry hint, and the next one went to another gateway.
      const backends = c.streams.map((s) => proxy.requests.find((r) => r.head.includes(`x-test-stream: ${s.tag}\r\n`))?.backend);
      expect(backends.every(Boolean), `SSE client ${i}: every stream went through the proxy`).toBe(true);
      const closedByRoll = c.streams.filter((_, k) => terminated.has(backends[k]!));
      expect(closedByRoll.length, `SSE client ${i}: was on a gateway that rolled`).toBeGreaterThanOrEqual(1);
      for (const s of closedByRoll) expect(s.endedWithRetry, `SSE client ${i}: the stream ended with a retry hint`).toBe(true);
      for (let k = 1; k < backends.length; k++)
        expect(
          backends[k],
          `SSE client ${i}: resumed on another gateway: ${JSON.stringify([backends, c.streams.map((s) => [s.opened - t0, (s.ended ?? 0) - t0, s.endedWithRetry]), marks])}`,
        ).not.toBe(backends[k - 1]);
      expect(backends.at(-1), `SSE client ${i}: ends on a replacement`).toMatch(/^[ab]2$/);
    }
    console.log(
      `[rolling restart] ${answered} reads answered, ${executions} executions, ${stored.length} events; SSE streams per client: ${sse.map((c) => c.streams.length).join(",")}`,
    );
  }, 240_000);
});
