/**
 * `npm run bench`, part (c): SSE commit-to-client latency with 100 and 1,000 connected clients while a
 * 1,000-node wide pipeline runs (the load of part (b)), beside polling (every client GETs the
 * pipeline's nodes every 2 s), measured in the same run on the same gateway.
 *
 * Latency = the client's receive time (Date.now() first thing in the node:http 'data' callback of the chunk completing
 * the event, before any parsing) minus the commit
 * instant. The commit instant is NodeChanged.at: the state-writer stamps it in createCommittedPublisher
 * (services/state-writer/src/handlers/committed.ts), which runs right after the transition's COMMIT returned and
 * before the JetStream publish, so the publish, the stream, the gateway and the client's socket are all inside
 * the figure. All processes share the machine's clock; `at` has millisecond resolution.
 * - SSE: every `node` event each client receives during the run (`at` is in the event itself).
 * - Polling: the same commits, taken from one recording SSE client, by status transition (first commit of
 *   queued, in_progress, completed per node); a polling client detects a commit with the first poll response
 *   in which the node's status is that one or a later one. Each poller GETs /pipelines/:id/nodes every 2 s from
 *   a random phase, one request in flight at most (a tick that finds the previous poll unanswered is skipped).
 *
 * Clients live in BENCH_SSE_WORKERS (4) child processes of this file (`--worker`), never in the bench's own
 * event loop; each reports its own CPU share, event-loop utilization and delay during the phase, so a client process
 * short of CPU (whose queueing would be inside the figure) shows. Each phase (SSE 100, polling 100, SSE 1,000,
 * polling 1,000) gets its own fresh pipeline of BENCH_SSE_NODES (1,000) text assets run cold on the real
 * executor-ffmpeg, like bench/runs.bench.ts.
 * Prints a markdown table and writes bench/results/sse.json.
 * BENCH_SSE_PROFILE_DIR=dir writes a V8 CPU profile per service (bench/cpu-profile.mjs).
 */
import { fork, type ChildProcess } from "node:child_process";
import { get as httpGet } from "node:http";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { randomUUID } from "node:crypto";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

type Histogram = Record<number, number>;
interface WorkerResult {
  histogram: Histogram;
  clients: number;
  /** Fewest / most node events (SSE) or polls answered (polling) of one client. */
  minEvents: number;
  /** SSE: bytes of all node frames received (every client), to show the average frame's size. */
  frameBytes?: number;
  maxEvents: number;
  /** Commits never seen by a client (polling) or clients that ended short of the expected events (SSE). */
  missing: number;
  failures: string[];
  /** This client process's own load between "opened" and "finish": is it the bottleneck? */
  load: WorkerLoad;
}
interface WorkerLoad {
  /** Event-loop utilization of the busiest 1 s window (1 = saturated), and over the whole window. */
  busiestSecond: number;
  overall: number;
  /** Event-loop delay (how late a timer ran), ms. */
  delayP99Ms: number;
  delayMaxMs: number;
  /** CPU time used (user + system) over wall time: the share of one core the process used. */
  cpuShare: number;
}
type ToWorker =
  | { cmd: "open"; mode: "sse" | "poll"; root: string; pipelineId: string; bearer: string; count: number; intervalMs: number }
  | { cmd: "finish"; expected: number; commits: Array<[string, number, number]>; drainMs: number };
type FromWorker = { ok: "opened" } | { ok: "finished"; result: WorkerResult } | { error: string };

const FRAME_END = Buffer.from("\n\n");
const NODE_FRAME = Buffer.from("event: node\n");
const SNAPSHOT_FRAME = Buffer.from("event: snapshot\n");
const AT_FIELD = Buffer.from('"at":"');
/** Whether the frame buf[start, end) begins with `prefix`. */
const frameIs = (buf: Buffer, start: number, end: number, prefix: Buffer) =>
  end - start >= prefix.length && buf.compare(prefix, 0, prefix.length, start, start + prefix.length) === 0;
const RANK: Record<string, number> = { pending: 0, queued: 1, in_progress: 2, completed: 3, failed: 3, cancelled: 3 };
const add = (h: Histogram, ms: number) => void (h[ms] = (h[ms] ?? 0) + 1);

// ---------------------------------------------------------------------------------------------------------
// Worker: holds `count` SSE or polling clients of one pipeline and reports a latency histogram.
// ---------------------------------------------------------------------------------------------------------
async function runWorker() {
  const send = (m: FromWorker) => process.send!(m);
  // One phase at a time: "open" starts a fresh one.
  let histogram: Histogram = {};
  let failures: string[] = [];
  let phase = { stopped: false };
  let finish: (m: ToWorker & { cmd: "finish" }) => Promise<Omit<WorkerResult, "load">> = async () => ({
    histogram,
    clients: 0,
    minEvents: 0,
    maxEvents: 0,
    missing: 0,
    failures,
  });
  // The process's own load while the phase runs (from "opened" to "finish").
  let measure = (): WorkerLoad => ({ busiestSecond: NaN, overall: NaN, delayP99Ms: NaN, delayMaxMs: NaN, cpuShare: NaN });
  const startMeasuring = () => {
    const cpu0 = process.cpuUsage();
    const wall0 = performance.now();
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    const first = performance.eventLoopUtilization();
    let last = first;
    let busiest = 0;
    const timer = setInterval(() => {
      const now = performance.eventLoopUtilization();
      busiest = Math.max(busiest, performance.eventLoopUtilization(now, last).utilization);
      last = now;
    }, 1000);
    measure = () => {
      clearInterval(timer);
      delay.disable();
      const overall = performance.eventLoopUtilization(performance.eventLoopUtilization(), first).utilization;
      const cpu = process.cpuUsage(cpu0);
      const cpuShare = (cpu.user + cpu.system) / 1000 / (performance.now() - wall0);
      return {
        busiestSecond: round(busiest, 2),
        overall: round(overall, 2),
        delayP99Ms: round(delay.percentile(99) / 1e6),
        delayMaxMs: round(delay.max / 1e6),
        cpuShare: round(cpuShare, 2),
      };
    };
  };

  const openSse = async (root: string, pipelineId: string, bearer: string) => {
    const own = phase;
    const url = `${root}/pipelines/${pipelineId}/events`;
    const minted = await fetch(`${url}/token`, { method: "POST", headers: { authorization: `Bearer ${bearer}` } });
    if (!minted.ok) throw new Error(`token: ${minted.status} ${await minted.text()}`);
    const { token } = (await minted.json()) as { token: string };
    const client = { events: 0, frameBytes: 0, close: () => undefined as void, closed: false };
    // node:http and Buffer scans, no fetch/web streams/TextDecoder: 250 clients per process take thousands of
    // events each, and a client process short of CPU would add its own queueing to the figure. `now` is read
    // first thing in the 'data' callback, before any parsing; `at` is found by a byte search in the frame.
    await new Promise<void>((resolveSnapshot, reject) => {
      const request = httpGet(`${url}?token=${encodeURIComponent(token)}`, { headers: { accept: "text/event-stream" } }, (response) => {
        if (response.statusCode !== 200) {
          reject(new Error(`events: ${response.statusCode}`));
          response.resume();
          return;
        }
        let tail: Buffer | undefined;
        response.on("data", (chunk: Buffer) => {
          const now = Date.now();
          const buf = tail ? Buffer.concat([tail, chunk]) : chunk;
          let start = 0;
          let end: number;
          // A frame ends at a blank line; JSON data never holds a raw newline.
          while ((end = buf.indexOf(FRAME_END, start)) >= 0) {
            if (frameIs(buf, start, end, NODE_FRAME)) {
              // `at` is NodeChanged's last field: the last `"at":"` of the frame.
              const i = buf.lastIndexOf(AT_FIELD, end);
              if (i >= start) {
                const from = i + AT_FIELD.length;
                add(histogram, now - Date.parse(buf.toString("latin1", from, buf.indexOf(0x22, from))));
                client.events++;
                client.frameBytes += end + FRAME_END.length - start;
              }
            } else if (frameIs(buf, start, end, SNAPSHOT_FRAME)) resolveSnapshot();
            start = end + FRAME_END.length;
          }
          tail = start < buf.length ? buf.subarray(start) : undefined;
        });
        response.on("close", () => {
          client.closed = true;
          if (!own.stopped && failures.length < 20) failures.push("stream: closed by the gateway");
        });
        response.on("error", () => undefined);
      });
      request.on("error", (error) => {
        if (!own.stopped && failures.length < 20) failures.push(`stream: ${String(error)}`);
        reject(error);
      });
      client.close = () => void request.destroy();
    });
    return client;
  };

  const startPoller = (root: string, pipelineId: string, bearer: string, intervalMs: number) => {
    const own = phase;
    // Per node: the highest status rank seen, and every rise as [nodeId, rank, receivedAt].
    const seen = new Map<string, number>();
    const detections: Array<[string, number, number]> = [];
    const poller = { polls: 0, detections, firstPoll: undefined as undefined | Promise<void> };
    let busy = false;
    const poll = async () => {
      if (busy || own.stopped) return;
      busy = true;
      try {
        const res = await fetch(`${root}/pipelines/${pipelineId}/nodes`, { headers: { authorization: `Bearer ${bearer}` } });
        const body = await res.text();
        const now = Date.now();
        if (!res.ok) throw new Error(`${res.status} ${body.slice(0, 200)}`);
        poller.polls++;
        for (const node of (JSON.parse(body) as { nodes: Array<{ id: string; status: string }> }).nodes) {
          const rank = RANK[node.status] ?? 0;
          if (rank > (seen.get(node.id) ?? 0)) {
            seen.set(node.id, rank);
            detections.push([node.id, rank, now]);
          }
        }
      } catch (error) {
        if (failures.length < 20) failures.push(`poll: ${String(error)}`);
      } finally {
        busy = false;
      }
    };
    // A random phase, then a tick every intervalMs, like a polling client's setInterval.
    poller.firstPoll = new Promise<void>((r) =>
      setTimeout(() => {
        const timer = setInterval(() => (own.stopped ? clearInterval(timer) : void poll()), intervalMs);
        void poll().then(r);
      }, Math.random() * intervalMs),
    );
    return poller;
  };

  process.on("message", async (m: ToWorker) => {
    try {
      if (m.cmd === "open") {
        histogram = {};
        failures = [];
        phase = { stopped: false };
      }
      if (m.cmd === "open" && m.mode === "sse") {
        const clients: Awaited<ReturnType<typeof openSse>>[] = [];
        // A few at a time: each open reads a 1,000-node snapshot; opening is not measured.
        for (let i = 0; i < m.count; i += 10)
          clients.push(...(await Promise.all(Array.from({ length: Math.min(10, m.count - i) }, () => openSse(m.root, m.pipelineId, m.bearer)))));
        startMeasuring();
        finish = async ({ expected, drainMs }) => {
          const deadline = Date.now() + drainMs;
          while (clients.some((c) => c.events < expected) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
          phase.stopped = true;
          for (const c of clients) c.close();
          const counts = clients.map((c) => c.events);
          const frameBytes = clients.reduce((sum, c) => sum + c.frameBytes, 0);
          return {
            histogram,
            clients: clients.length,
            minEvents: Math.min(...counts),
            maxEvents: Math.max(...counts),
            missing: counts.filter((n) => n < expected).length,
            failures,
            frameBytes,
          };
        };
        send({ ok: "opened" });
      } else if (m.cmd === "open" && m.mode === "poll") {
        const pollers = Array.from({ length: m.count }, () => startPoller(m.root, m.pipelineId, m.bearer, m.intervalMs));
        await Promise.all(pollers.map((p) => p.firstPoll));
        startMeasuring();
        finish = async ({ commits, drainMs }) => {
          // Poll on until every poller saw every node's last commit (or drainMs).
          const last = new Map<string, number>();
          for (const [nodeId, rank] of commits) last.set(nodeId, Math.max(rank, last.get(nodeId) ?? 0));
          const sawAll = (p: (typeof pollers)[number]) => {
            const top = new Map<string, number>();
            for (const [id, rank] of p.detections) top.set(id, rank);
            return [...last].every(([id, rank]) => (top.get(id) ?? 0) >= rank);
          };
          const deadline = Date.now() + drainMs;
          while (!pollers.every(sawAll) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
          phase.stopped = true;
          let missing = 0;
          for (const p of pollers) {
            const byNode = new Map<string, Array<[number, number]>>();
            for (const [id, rank, at] of p.detections) (byNode.get(id) ?? byNode.set(id, []).get(id)!).push([rank, at]);
            for (const [id, rank, at] of commits) {
              const hit = byNode.get(id)?.find(([r]) => r >= rank);
              if (hit) add(histogram, hit[1] - at);
              else missing++;
            }
          }
          const polls = pollers.map((p) => p.polls);
          return { histogram, clients: pollers.length, minEvents: Math.min(...polls), maxEvents: Math.max(...polls), missing, failures };
        };
        send({ ok: "opened" });
      } else if (m.cmd === "finish") {
        const result = await finish(m);
        send({ ok: "finished", result: { ...result, load: measure() } });
      }
    } catch (error) {
      send({ error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    }
  });
}

// ---------------------------------------------------------------------------------------------------------
// Bench: the stack, the pipelines, the phases.
// ---------------------------------------------------------------------------------------------------------
const NODES = Number(process.env.BENCH_SSE_NODES ?? 1000);
const WORKERS = Number(process.env.BENCH_SSE_WORKERS ?? 4);
const CLIENT_COUNTS = (process.env.BENCH_SSE_CLIENTS ?? "100,1000").split(",").map(Number);
const MODES = (process.env.BENCH_SSE_MODES ?? "sse,poll").split(",") as Array<"sse" | "poll">;
const POLL_MS = 2000;
const CONCURRENCY = Number(process.env.BENCH_RUN_CONCURRENCY ?? 8);
const RUN_TIMEOUT_MS = Number(process.env.BENCH_RUN_TIMEOUT_MS ?? 300_000);
const PROFILE_DIR = process.env.BENCH_SSE_PROFILE_DIR;
/** How long clients may take to receive (SSE) or see (polling) the run's last commits after it finished. */
const DRAIN_MS = Number(process.env.BENCH_SSE_DRAIN_MS ?? 180_000);

const round = (n: number, d = 1) => Math.round(n * 10 ** d) / 10 ** d;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const load = () =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(" ");

function percentile(h: Histogram, p: number): number {
  const keys = Object.keys(h)
    .map(Number)
    .sort((a, b) => a - b);
  const total = keys.reduce((s, k) => s + h[k]!, 0);
  let seen = 0;
  for (const k of keys) if ((seen += h[k]!) >= p * total) return k;
  return NaN;
}

class Worker {
  private waiting: Array<(m: FromWorker) => void> = [];
  constructor(readonly proc: ChildProcess) {
    proc.on("message", (m: FromWorker) => this.waiting.shift()?.(m));
  }
  ask(m: ToWorker): Promise<FromWorker> {
    return new Promise((resolveAnswer, reject) => {
      this.waiting.push((a) => ("error" in a ? reject(new Error(a.error)) : resolveAnswer(a)));
      this.proc.send(m);
    });
  }
}

interface Phase {
  mode: "sse" | "poll";
  clients: number;
  commits: number;
  events: number;
  p50: number;
  p99: number;
  max: number;
  minPerClient: number;
  maxPerClient: number;
  missing: number;
  failures: string[];
  runMs: number;
  gatewayFds?: number;
  eventConsumers?: number;
  gatewayCpuSeconds: number;
  /** CPU used by every process of the machine's stack during the run (services, clients, Postgres, NATS, this one), in cores. */
  coresBusy: number;
  /** SSE: the mean size of a node frame on the wire, bytes. */
  frameBytesMean?: number;
  /** Flushes of the pipeline's hub in the gateway (each: one write per stream), over the whole phase. */
  hubFlushes?: number;
  /** Commit -> the event on a plain NATS subscription in the bench process (the bus's share). */
  busP50: number;
  busP99: number;
  loadAtStart: string;
  /** The client processes' own load (the busiest of them): event-loop utilization and delay. */
  clientLoad: WorkerLoad;
}

async function main() {
  const { createTestBus, startStack, dropDatabase, testServerUrl, openSse } = await import("@vp/testkit");
  const { createPool, importPipeline, migrate, withDatabase } = await import("@vp/db");
  const { cpuMsOf, profileEnv, CpuMeter, pidsMatching } = await import("./proc");

  const scratch = await mkdtemp(join(tmpdir(), "vp-bench-sse-"));
  const dbName = `vp_bench_sse_${process.pid}`;
  const adminUrl = withDatabase(testServerUrl(), dbName);
  await migrate({ adminUrl });
  const admin = createPool({ url: adminUrl, applicationName: "bench-sse-setup", max: 2 });
  const testBus = await createTestBus();
  const stack = await startStack({
    databaseAdminUrl: adminUrl,
    namespace: testBus.topology.namespace,
    storageRoot: join(scratch, "storage"),
    workRoot: join(scratch, "work"),
    env: {
      LOG_LEVEL: "info",
      JOB_CONCURRENCY: String(CONCURRENCY),
      ...profileEnv(PROFILE_DIR),
    },
    services: ["state-writer", "scheduler", "executor-ffmpeg", "gateway"],
  });
  const monitor = createPool({ url: withDatabase(testServerUrl(), "postgres"), applicationName: "bench-sse-cpu-monitor", max: 1 });
  const workers = Array.from(
    { length: WORKERS },
    () => new Worker(fork(fileURLToPath(import.meta.url), ["--worker"], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] })),
  );
  const phases: Phase[] = [];
  try {
    const root = `${stack.baseUrl}/v1/video_production`;
    const bearer = await stack.token();
    const scheduler = stack.services.get("scheduler")!;
    const gateway = stack.services.get("gateway")!;
    const cpuSeconds = async (pid: number) => ((await cpuMsOf(pid)) ?? 0) / 1000;
    // How busy the whole machine is during a run: every service, the client processes, the database's backends,
    // nats-server and this process (its recorder client), against the cores there are.
    const natsServer = (await pidsMatching(/(^|\/)nats-server( |$)/)).map((p) => ({ pid: p.pid, label: "nats-server" }));
    const meter = new CpuMeter(
      () => [
        ...[...stack.services].map(([name, svc]) => ({ pid: svc.pid, label: name })),
        ...workers.flatMap((w) => (w.proc.pid ? [{ pid: w.proc.pid, label: "client processes" }] : [])),
        ...natsServer,
      ],
      monitor,
      dbName,
    );

    for (const clients of CLIENT_COUNTS) {
      for (const mode of MODES) {
        const tag = randomUUID().slice(0, 8);
        const nodes = Array.from({ length: NODES }, (_, i) => ({
          id: `w${i}`,
          title: `Wide ${i}`,
          type: "asset" as const,
          inputs: {},
          asset: { type: "text", content: `bench sse ${tag} node ${i}` },
        }));
        const { pipeline } = await importPipeline(admin, { pipeline: { id: randomUUID(), title: `bench sse ${mode} ${clients}` }, nodes });
        // The bus's share of the latency: commit -> the published event reaching a plain NATS subscriber (this process).
        const busHistogram: Histogram = {};
        const busSub = testBus.bus.nc.subscribe(testBus.topology.subjects.events(pipeline.id), {
          callback: (_err, m) => {
            const at = /"at":"([^"]+)"/.exec(m.string())?.[1];
            if (at) add(busHistogram, Date.now() - Date.parse(at));
          },
        });
        const recorder = openSse(`${root}/pipelines/${pipeline.id}/events`, { bearer });
        await recorder.waitFor((e) => e.some((x) => x.event === "snapshot"), 120_000);

        const share = (w: number) => Math.floor(clients / WORKERS) + (w < clients % WORKERS ? 1 : 0);
        const t0Open = Date.now();
        await Promise.all(workers.map((w, i) => w.ask({ cmd: "open", mode, root, pipelineId: pipeline.id, bearer, count: share(i), intervalMs: POLL_MS })));
        console.error(`[bench:sse] ${mode} ${clients}: clients open in ${Date.now() - t0Open} ms (load ${load()})`);
        await sleep(1000);

        const loadAtStart = load();
        const cpu0 = await cpuSeconds(gateway.pid);
        await meter.start();
        const t0 = Date.now();
        const res = await fetch(`${root}/pipelines/${pipeline.id}/execute`, { method: "POST", headers: { authorization: `Bearer ${bearer}` } });
        if (!res.ok) throw new Error(`execute: ${res.status} ${await res.text()}`);
        const { run_id: runId } = (await res.json()) as { run_id: string };
        let gatewayFds: number | undefined;
        let eventConsumers: number | undefined;
        const sampled = (async () => {
          await sleep(5000);
          gatewayFds = (await readdir(`/proc/${gateway.pid}/fd`)).length;
          eventConsumers = (await testBus.bus.jsm.streams.info(testBus.topology.streams.events.name)).state.consumer_count;
        })();
        const finished = await scheduler.waitForLog((l) => l.msg === "run finished" && l.runId === runId, RUN_TIMEOUT_MS);
        const runMs = Date.parse(String(finished.time)) - t0;
        await sampled.catch(() => undefined);
        const gatewayCpuSeconds = (await cpuSeconds(gateway.pid)) - cpu0;
        const machine = await meter.stop();
        const coresBusy = round((machine.stackMs + machine.benchMs) / machine.wallMs, 2);

        // Every commit of the run, as the recorder saw it (it may lag; `at` is in each event): until every node's
        // completion arrived and nothing more came for 2 s.
        const completed = () =>
          new Set(
            recorder.events
              .filter((e) => e.event === "node" && (e.data as { status?: string }).status === "completed")
              .map((e) => (e.data as { nodeId: string }).nodeId),
          ).size;
        await recorder.waitFor(() => completed() >= NODES, DRAIN_MS);
        let count = -1;
        while (count !== recorder.events.length) {
          count = recorder.events.length;
          await sleep(2000);
        }
        const changes = recorder.events.filter((e) => e.event === "node").map((e) => e.data as { nodeId: string; status: string; at: string });
        const firstAtRank = new Map<string, [string, number, number]>();
        for (const c of changes) {
          const key = `${c.nodeId}:${RANK[c.status] ?? 0}`;
          if (!firstAtRank.has(key)) firstAtRank.set(key, [c.nodeId, RANK[c.status] ?? 0, Date.parse(c.at)]);
        }
        const commits = [...firstAtRank.values()].filter(([, rank]) => rank > 0);
        await recorder.close();
        busSub.unsubscribe();

        const answers = await Promise.all(workers.map((w) => w.ask({ cmd: "finish", expected: changes.length, commits, drainMs: DRAIN_MS })));
        const results = answers.map((a) => (a as { result: WorkerResult }).result);
        // The gateway's hub of the pipeline closes with its last stream: how many events each flush carried.
        const hubClosed = await gateway.waitForLog((l) => l.msg === "event hub closed" && l.pipelineId === pipeline.id, 10_000).catch(() => undefined);
        const histogram: Histogram = {};
        for (const r of results) for (const [k, v] of Object.entries(r.histogram)) histogram[Number(k)] = (histogram[Number(k)] ?? 0) + v;
        const events = Object.values(histogram).reduce((s, v) => s + v, 0);
        const phase: Phase = {
          mode,
          clients,
          commits: mode === "sse" ? changes.length : commits.length,
          events,
          p50: percentile(histogram, 0.5),
          p99: percentile(histogram, 0.99),
          max: Math.max(...Object.keys(histogram).map(Number)),
          minPerClient: Math.min(...results.map((r) => r.minEvents)),
          maxPerClient: Math.max(...results.map((r) => r.maxEvents)),
          missing: results.reduce((s, r) => s + r.missing, 0),
          failures: results.flatMap((r) => r.failures).slice(0, 10),
          runMs,
          gatewayFds,
          eventConsumers,
          gatewayCpuSeconds: round(gatewayCpuSeconds, 2),
          coresBusy,
          frameBytesMean: mode === "sse" && events ? Math.round(results.reduce((sum, r) => sum + (r.frameBytes ?? 0), 0) / events) : undefined,
          hubFlushes: hubClosed ? Number(hubClosed.flushes) : undefined,
          busP50: percentile(busHistogram, 0.5),
          busP99: percentile(busHistogram, 0.99),
          loadAtStart,
          clientLoad: {
            busiestSecond: Math.max(...results.map((r) => r.load.busiestSecond)),
            overall: Math.max(...results.map((r) => r.load.overall)),
            delayP99Ms: Math.max(...results.map((r) => r.load.delayP99Ms)),
            delayMaxMs: Math.max(...results.map((r) => r.load.delayMaxMs)),
            cpuShare: Math.max(...results.map((r) => r.load.cpuShare)),
          },
        };
        console.error(`[bench:sse] ${JSON.stringify(phase)} (load ${load()})`);
        phases.push(phase);
        await sleep(2000);
      }
    }
  } finally {
    for (const w of workers) w.proc.kill("SIGTERM");
    await stack.stop();
    await testBus.cleanup();
    await admin.end();
    await monitor.end().catch(() => {});
    await dropDatabase(dbName);
    await rm(scratch, { recursive: true, force: true });
  }
  return phases;
}

if (process.argv.includes("--worker")) {
  await runWorker();
} else {
  const loadAtStart = load();
  const phases = await main();
  const loadAtEnd = load();
  const rows = CLIENT_COUNTS.map((clients) => {
    // A mode left out (BENCH_SSE_MODES) shows as NaN.
    const none = { p50: NaN, p99: NaN, max: NaN, events: 0, commits: 0, missing: 0 } as Phase;
    const sse = phases.find((p) => p.mode === "sse" && p.clients === clients) ?? none;
    const poll = phases.find((p) => p.mode === "poll" && p.clients === clients) ?? none;
    return { clients, sse, poll, ratioP50: poll.p50 / Math.max(sse.p50, 1), ratioP99: poll.p99 / Math.max(sse.p99, 1) };
  });
  console.log(
    `\n| clients | SSE p50 ms | SSE p99 ms | SSE max ms | SSE deliveries (commits x clients) | polling (2 s) p50 ms | polling p99 ms | polling detections | polling / SSE p50 | polling / SSE p99 |`,
  );
  console.log(`|---|---|---|---|---|---|---|---|---|---|`);
  for (const r of rows) {
    console.log(
      `| ${r.clients} | ${r.sse.p50} | ${r.sse.p99} | ${r.sse.max} | ${r.sse.events} (${r.sse.commits} x ${r.clients}${r.sse.missing ? `, ${r.sse.missing} clients short` : ""}) | ${r.poll.p50} | ${r.poll.p99} | ${r.poll.events} (${r.poll.commits} x ${r.clients}${r.poll.missing ? `, ${r.poll.missing} missed` : ""}) | ${round(r.ratioP50)}x | ${round(r.ratioP99)}x |`,
    );
  }
  const at1000 = rows.find((r) => r.clients === 1000);
  if (at1000) {
    const ok = at1000.sse.p99 <= 100 && at1000.ratioP99 >= 20;
    console.log(
      `\nTarget (c): p99 <= 100 ms at 1,000 clients and >= 20x better than polling -> ${ok ? "met" : "NOT met"} (SSE p99 ${at1000.sse.p99} ms, ${round(at1000.ratioP99)}x).`,
    );
  }
  for (const p of phases)
    console.log(
      `  ${p.mode} ${p.clients}: run ${p.runMs} ms, CPU of all processes ${p.coresBusy} cores of ${availableParallelism()}, commit -> NATS subscriber p50/p99 ${p.busP50}/${p.busP99} ms, gateway CPU ${p.gatewayCpuSeconds} s, ${p.frameBytesMean ? `mean node frame ${p.frameBytesMean} bytes, ` : ""}hub flushes ${p.hubFlushes} (${round(p.commits / (p.hubFlushes ?? NaN))} events each), gateway fds ${p.gatewayFds}, VP_EVENTS consumers ${p.eventConsumers}, load at start ${p.loadAtStart}; busiest client process: event-loop utilization ${p.clientLoad.busiestSecond} (busiest second) / ${p.clientLoad.overall} (phase), loop delay p99/max ${p.clientLoad.delayP99Ms}/${p.clientLoad.delayMaxMs} ms, CPU ${Math.round(p.clientLoad.cpuShare * 100)} % of a core`,
    );
  console.log(`Load average at start ${loadAtStart}, at end ${loadAtEnd}; ${WORKERS} client processes; ${NODES}-node wide pipeline per phase.`);
  const out = resolve(import.meta.dirname, "results");
  await mkdir(out, { recursive: true });
  await writeFile(
    join(out, "sse.json"),
    JSON.stringify({ at: new Date().toISOString(), nodes: NODES, workers: WORKERS, loadAtStart, loadAtEnd, rows, phases }, null, 2),
  );
  process.exit(0);
}
