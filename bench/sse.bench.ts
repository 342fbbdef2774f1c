/**
 * `npm run bench`, part (c) of issue 8: SSE commit-to-client latency with 100 and 1,000 connected clients while a
 * 1,000-node wide pipeline runs (the load of part (b)), beside the seeds' design (every client polls the
 * pipeline's nodes every 2 s), measured in the same run on the same gateway.
 *
 * Latency = the client's receive time (Date.now() when the chunk completing the event arrived) minus the commit
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
 * event loop. Each phase (SSE 100, polling 100, SSE 1,000, polling 1,000) gets its own fresh pipeline of
 * BENCH_SSE_NODES (1,000) text assets run cold on the real executor-ffmpeg, like bench/runs.bench.ts.
 * Prints a markdown table and writes bench/results/sse.json.
 * BENCH_SSE_PROFILE_DIR=dir writes a V8 CPU profile per service (bench/cpu-profile.mjs).
 */
import { fork, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

type Histogram = Record<number, number>;
interface WorkerResult {
  histogram: Histogram;
  clients: number;
  /** Fewest / most node events (SSE) or polls answered (polling) of one client. */
  minEvents: number;
  maxEvents: number;
  /** Commits never seen by a client (polling) or clients that ended short of the expected events (SSE). */
  missing: number;
  failures: string[];
}
type ToWorker =
  | { cmd: "open"; mode: "sse" | "poll"; root: string; pipelineId: string; bearer: string; count: number; intervalMs: number }
  | { cmd: "finish"; expected: number; commits: Array<[string, number, number]>; drainMs: number };
type FromWorker = { ok: "opened" } | { ok: "finished"; result: WorkerResult } | { error: string };

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
  let finish: (m: ToWorker & { cmd: "finish" }) => Promise<WorkerResult> = async () => ({ histogram, clients: 0, minEvents: 0, maxEvents: 0, missing: 0, failures });

  const openSse = async (root: string, pipelineId: string, bearer: string) => {
    const url = `${root}/pipelines/${pipelineId}/events`;
    const minted = await fetch(`${url}/token`, { method: "POST", headers: { authorization: `Bearer ${bearer}` } });
    if (!minted.ok) throw new Error(`token: ${minted.status} ${await minted.text()}`);
    const { token } = (await minted.json()) as { token: string };
    const controller = new AbortController();
    const response = await fetch(`${url}?token=${encodeURIComponent(token)}`, { headers: { accept: "text/event-stream" }, signal: controller.signal });
    if (!response.ok || !response.body) throw new Error(`events: ${response.status} ${await response.text()}`);
    const client = { events: 0, controller, snapshot: undefined as undefined | (() => void) };
    const gotSnapshot = new Promise<void>((r) => (client.snapshot = r));
    void (async () => {
      const decoder = new TextDecoder();
      let buffer = "";
      let type = "message";
      let data = "";
      try {
        for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
          const now = Date.now();
          buffer += decoder.decode(chunk, { stream: true });
          let nl: number;
          while ((nl = buffer.indexOf("\n")) >= 0) {
            const line = buffer.slice(0, nl);
            buffer = buffer.slice(nl + 1);
            if (line === "") {
              if (type === "snapshot") client.snapshot!();
              else if (type === "node") {
                // `at` is NodeChanged's last field; scanning for it keeps the client's own CPU out of the figure.
                const i = data.lastIndexOf('"at":"');
                add(histogram, now - Date.parse(data.slice(i + 6, data.indexOf('"', i + 6))));
                client.events++;
              }
              type = "message";
              data = "";
            } else if (line.startsWith("event:")) type = line.slice(6).trim();
            else if (line.startsWith("data:")) data = line.slice(5).trimStart();
          }
        }
      } catch (error) {
        if (!controller.signal.aborted) failures.push(`stream: ${String(error)}`);
      }
    })();
    await gotSnapshot;
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
    // A random phase, then a tick every intervalMs (the seeds' setInterval).
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
        for (let i = 0; i < m.count; i += 10) clients.push(...(await Promise.all(Array.from({ length: Math.min(10, m.count - i) }, () => openSse(m.root, m.pipelineId, m.bearer)))));
        finish = async ({ expected, drainMs }) => {
          const deadline = Date.now() + drainMs;
          while (clients.some((c) => c.events < expected) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
          for (const c of clients) c.controller.abort();
          const counts = clients.map((c) => c.events);
          return { histogram, clients: clients.length, minEvents: Math.min(...counts), maxEvents: Math.max(...counts), missing: counts.filter((n) => n < expected).length, failures };
        };
        send({ ok: "opened" });
      } else if (m.cmd === "open" && m.mode === "poll") {
        const pollers = Array.from({ length: m.count }, () => startPoller(m.root, m.pipelineId, m.bearer, m.intervalMs));
        await Promise.all(pollers.map((p) => p.firstPoll));
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
        send({ ok: "finished", result: await finish(m) });
      }
    } catch (error) {
      send({ error: error instanceof Error ? error.stack ?? error.message : String(error) });
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
const load = () => loadavg().map((x) => x.toFixed(2)).join(" ");

function percentile(h: Histogram, p: number): number {
  const keys = Object.keys(h).map(Number).sort((a, b) => a - b);
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
  /** Commit -> the event on a plain NATS subscription in the bench process (the bus's share). */
  busP50: number;
  busP99: number;
  loadAtStart: string;
}

async function main() {
  const { createTestBus, startStack, dropDatabase, testServerUrl, openSse } = await import("@vp/testkit");
  const { createPool, importPipeline, migrate, withDatabase } = await import("@vp/db");
  const { readFile } = await import("node:fs/promises");

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
      ...(PROFILE_DIR
        ? { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --import ${resolve(import.meta.dirname, "cpu-profile.mjs")}`.trim(), VP_CPU_PROFILE_DIR: resolve(PROFILE_DIR) }
        : {}),
    },
    services: ["state-writer", "scheduler", "executor-ffmpeg", "gateway"],
  });
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
    const cpuSeconds = async (pid: number) => {
      const fields = (await readFile(`/proc/${pid}/stat`, "utf8")).split(") ")[1]!.split(" ");
      return (Number(fields[11]) + Number(fields[12])) / 100;
    };

    for (const clients of CLIENT_COUNTS) {
      for (const mode of MODES) {
        const tag = randomUUID().slice(0, 8);
        const nodes = Array.from({ length: NODES }, (_, i) => ({ id: `w${i}`, title: `Wide ${i}`, type: "asset" as const, inputs: {}, asset: { type: "text", content: `bench sse ${tag} node ${i}` } }));
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

        // Every commit of the run, as the recorder saw it (it may lag; `at` is in each event): until every node's
        // completion arrived and nothing more came for 2 s.
        const completed = () => new Set(recorder.events.filter((e) => e.event === "node" && (e.data as { status?: string }).status === "completed").map((e) => (e.data as { nodeId: string }).nodeId)).size;
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
          busP50: percentile(busHistogram, 0.5),
          busP99: percentile(busHistogram, 0.99),
          loadAtStart,
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
  console.log(`\n| clients | SSE p50 ms | SSE p99 ms | SSE max ms | SSE deliveries (commits x clients) | polling (2 s) p50 ms | polling p99 ms | polling detections | polling / SSE p50 | polling / SSE p99 |`);
  console.log(`|---|---|---|---|---|---|---|---|---|---|`);
  for (const r of rows) {
    console.log(
      `| ${r.clients} | ${r.sse.p50} | ${r.sse.p99} | ${r.sse.max} | ${r.sse.events} (${r.sse.commits} x ${r.clients}${r.sse.missing ? `, ${r.sse.missing} clients short` : ""}) | ${r.poll.p50} | ${r.poll.p99} | ${r.poll.events} (${r.poll.commits} x ${r.clients}${r.poll.missing ? `, ${r.poll.missing} missed` : ""}) | ${round(r.ratioP50)}x | ${round(r.ratioP99)}x |`,
    );
  }
  const at1000 = rows.find((r) => r.clients === 1000);
  if (at1000) {
    const ok = at1000.sse.p99 <= 100 && at1000.ratioP99 >= 20;
    console.log(`\nTarget (issue 8 c): p99 <= 100 ms at 1,000 clients and >= 20x better than polling -> ${ok ? "met" : "NOT met"} (SSE p99 ${at1000.sse.p99} ms, ${round(at1000.ratioP99)}x).`);
  }
  for (const p of phases) console.log(`  ${p.mode} ${p.clients}: run ${p.runMs} ms, commit -> NATS subscriber p50/p99 ${p.busP50}/${p.busP99} ms, gateway CPU ${p.gatewayCpuSeconds} s, gateway fds ${p.gatewayFds}, VP_EVENTS consumers ${p.eventConsumers}, load at start ${p.loadAtStart}`);
  console.log(`Load average at start ${loadAtStart}, at end ${loadAtEnd}; ${WORKERS} client processes; ${NODES}-node wide pipeline per phase.`);
  const out = resolve(import.meta.dirname, "results");
  await mkdir(out, { recursive: true });
  await writeFile(join(out, "sse.json"), JSON.stringify({ at: new Date().toISOString(), nodes: NODES, workers: WORKERS, loadAtStart, loadAtEnd, rows, phases }, null, 2));
  process.exit(0);
}
