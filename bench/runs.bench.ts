/**
 * `npm run bench`, part (b): whole-pipeline runs of 1,000 nodes through the
 * real services, beside a BullMQ flow of the same shape on the local Redis, in the same run on the same machine.
 *
 * Shapes (BENCH_RUN_NODES, default 1,000 nodes each):
 * - wide: 1,000 independent nodes in one run: all ready at once (the scheduler claims them through the
 *   state-writer, 32 pending at a time per pipeline); jobs in flight bounded by the executors' max ack pending
 *   (JOB_CONCURRENCY = BENCH_RUN_CONCURRENCY, default 8, the BullMQ worker's concurrency too).
 * - chain: a video and an audio source, then 998 mix-audio nodes each taking the previous one's video:
 *   1,000 nodes, 999 of them strictly one after another.
 * Each shape runs twice: "cold" (every node executes) and "cached" (the same nodes in a fresh pipeline, every
 * one completed from the content-addressed cache: the scheduler keys it and the state-writer commits it, no
 * executor involved).
 *
 * What the work is, and what "orchestration time" means here:
 * - wide cold runs text assets (distinct inline content) on the real executor-ffmpeg: its work is a small
 *   storage write and its hash (a few ms; each "work completed" says). The figure is the run's whole wall time,
 *   work included (conservative).
 * - chain cold cannot use real cheap work: only assets take no inputs and every type that takes a video
 *   (mix-audio, merge-videos, compose-video) runs ffmpeg (~0.1-1 s each: minutes for 1,000). It runs on
 *   bench/noop-executor.ts instead: the product's executor runtime (same consumer, claim transaction,
 *   heartbeats, result fact, ack) with a work function that stores a few bytes, the counterpart of BullMQ's
 *   no-op worker. executor-ffmpeg is stopped for that phase (they would share the durable consumers).
 * - orchestration total = run wall time - the work time on the critical path. Wall time runs from just before
 *   the execute request to the scheduler's "run finished" log line (its timestamp; written after the run's
 *   record is finished). For the chain the critical path is every node, so the executors' reported
 *   workSeconds ("work completed") are subtracted; for wide the work overlaps and nothing is subtracted.
 *   Per node = total / nodes; nodes/s = nodes / total. The execute request is answered once the run is recorded
 *   and its first LAUNCH_CHUNK members dispatched ("acceptedMs"); it may still answer 202 under heavy load (the
 *   verdict later than the gateway's timeout); the run goes on and the wall time is unaffected.
 * - BullMQ: wide = 1,000 jobs added in one addBulk, a no-op worker of the same concurrency, until the last
 *   completes; chain = one FlowProducer flow 1,000 deep (each job the only child of the next), until the
 *   root completes.
 *
 * Setup (creating the pipelines) writes the nodes straight into the bench database in one transaction each
 * (importPipeline; the gateway's import takes at most 500 nodes) and is not measured; the run is checked as a
 * whole by the scheduler like any other. Prints a markdown table and writes bench/results/runs.json.
 *
 * CPU accounting (is the target physically reachable on this machine?): over each run, the CPU time (utime + stime from
 * /proc/<pid>/stat) of every process of the stack: each service, the Postgres backends of the bench database
 * (by application_name, found in pg_stat_activity every 250 ms, so backends that come and go are counted), the
 * Postgres auxiliary processes (walwriter, checkpointer, background writer) and nats-server, printed as CPU ms
 * per node per process. The machine has os.availableParallelism() cores (2 here): cores x 1,000 CPU-ms/s
 * divided by the stack's CPU ms per node is the most nodes/s this design could reach on it with nothing else
 * running (the physical ceiling). nats-server and the Postgres auxiliary processes are shared with whatever
 * else runs on the machine (other engineers' tests), so their share is an upper bound; this bench process
 * (which parses every service's log lines) is printed but not counted in the stack's total.
 *
 * Profiling: BENCH_RUN_PROFILE_DIR=dir writes a V8 CPU profile per service (bench/cpu-profile.mjs);
 * BENCH_RUN_LOGS_DIR=dir keeps every service's log lines (timestamps of dispatch, work, commits per node).
 */
import { spawn } from "node:child_process";
import { CLK_TCK, CpuMeter, pidsMatching, profileEnv, type CpuReport } from "./proc";
import { randomUUID } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { FlowProducer, Queue, Worker, type FlowJob } from "bullmq";
import { createTestBus, startStack, dropDatabase, testServerUrl, REPO_ROOT, type ServiceProcess } from "@vp/testkit";
import { createPool, importPipeline, migrate, withDatabase, type Queryable } from "@vp/db";
import { apiCaller } from "./http";

const NODES = Number(process.env.BENCH_RUN_NODES ?? 1000);
const CONCURRENCY = Number(process.env.BENCH_RUN_CONCURRENCY ?? 8);
const RUN_TIMEOUT_MS = Number(process.env.BENCH_RUN_TIMEOUT_MS ?? 300_000);
/** Which shapes to run (comma-separated, default both): "wide" alone is a quicker comparison of two builds. */
const SHAPES = new Set((process.env.BENCH_RUN_SHAPES ?? "wide,chain").split(",").map((x) => x.trim()));
/** A directory: every service of the stack writes a V8 CPU profile there when it stops (bench/cpu-profile.mjs). */
const PROFILE_DIR = process.env.BENCH_RUN_PROFILE_DIR;
/** A directory: the services' JSON log lines are written there (one file per service) when the bench ends. */
const LOGS_DIR = process.env.BENCH_RUN_LOGS_DIR;

type Log = Record<string, unknown>;
interface Measured {
  shape: "wide" | "chain";
  mode: "cold" | "cached";
  nodes: number;
  wallMs: number;
  /** Time until the execute request was answered (the run recorded and its first wave dispatched). */
  acceptedMs: number;
  workMs: number;
  orchestrationMs: number;
  executed: number;
  cached: number;
  /** CPU ms spent during the run, per process label (see CpuMeter). */
  cpu: CpuReport;
}

// ---------------------------------------------------------------------------------------------------------------
// CPU accounting per process over a run.

const CORES = availableParallelism();

/** One run's CPU table: ms and ms per node per process, cores busy, and the physical ceiling in nodes/s. */
function printCpu(title: string, nodes: number, cpu: CpuReport): void {
  const lines = Object.entries(cpu.byProcess).sort((a, b) => b[1] - a[1]);
  const perNode = cpu.stackMs / nodes;
  console.error(`[bench:runs] CPU during ${title} (wall ${cpu.wallMs} ms, ${nodes} nodes; CLK_TCK ${CLK_TCK}, ${CORES} cores):`);
  for (const [label, ms] of lines)
    console.error(`    ${label.padEnd(44)} ${String(Math.round(ms)).padStart(7)} ms  ${(ms / nodes).toFixed(3).padStart(8)} ms/node`);
  console.error(
    `    ${"stack total".padEnd(44)} ${String(Math.round(cpu.stackMs)).padStart(7)} ms  ${perNode.toFixed(3).padStart(8)} ms/node  (${(cpu.stackMs / cpu.wallMs).toFixed(2)} cores busy on average)`,
  );
  console.error(
    `    ${"(this bench process, not counted)".padEnd(44)} ${String(Math.round(cpu.benchMs)).padStart(7)} ms  ${(cpu.benchMs / nodes).toFixed(3).padStart(8)} ms/node`,
  );
  console.error(`    physical ceiling: ${CORES} x 1,000 CPU-ms/s / ${perNode.toFixed(3)} ms/node = ${Math.round((CORES * 1000) / perNode)} nodes/s`);
}

const round = (n: number, d = 2) => Math.round(n * 10 ** d) / 10 ** d;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The first log line at or after `from` matching `predicate` (scans only new lines; the bench shares 2 cores). */
async function nextLog(logs: Log[], from: number, predicate: (l: Log) => boolean, timeoutMs: number): Promise<Log> {
  const deadline = Date.now() + timeoutMs;
  let i = from;
  for (;;) {
    for (; i < logs.length; i++) if (predicate(logs[i]!)) return logs[i]!;
    if (Date.now() > deadline) throw new Error(`log line not seen within ${timeoutMs} ms; last: ${JSON.stringify(logs.slice(-3))}`);
    await sleep(10);
  }
}

const wideNodes = (tag: string) =>
  Array.from({ length: NODES }, (_, i) => ({
    id: `w${i}`,
    title: `Wide ${i}`,
    type: "asset" as const,
    inputs: {},
    asset: { type: "text", content: `bench ${tag} wide node ${i}` },
  }));

/** Two sources, then NODES - 2 mix-audio nodes, each taking the previous one's video and the shared audio. */
const chainNodes = (tag: string) => [
  { id: "video", title: `Video ${tag}`, type: "asset" as const, inputs: {}, asset: { type: "video", source: `uploads/bench/${tag}/video.mp4` } },
  { id: "audio", title: `Audio ${tag}`, type: "asset" as const, inputs: {}, asset: { type: "audio", source: `uploads/bench/${tag}/audio.m4a` } },
  ...Array.from({ length: NODES - 2 }, (_, i) => ({
    id: `c${i}`,
    title: `Chain ${i}`,
    type: "mix-audio" as const,
    inputs: { video: [i === 0 ? "video" : `c${i - 1}`], audio: ["audio"] },
    config: { bench: tag },
  })),
];

/** Starts bench/noop-executor.ts with the stack's environment; resolves once it is ready. */
async function startNoopExecutor(env: Record<string, string>): Promise<{ pid: number; logs: Log[]; stop(): Promise<void> }> {
  const proc = spawn(process.execPath, ["--import", "tsx", "bench/noop-executor.ts"], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env, HEALTH_PORT: "0", LOG_PRETTY: "0" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const logs: Log[] = [];
  let buffer = "";
  proc.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    buffer += chunk;
    let nl: number;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      try {
        logs.push(JSON.parse(line) as Log);
      } catch {
        logs.push({ msg: line });
      }
    }
  });
  const exited = new Promise<void>((r) => proc.once("exit", () => r()));
  await Promise.race([
    nextLog(logs, 0, (l) => l.msg === "executor-bench ready", 60_000),
    exited.then(() => Promise.reject(new Error("noop executor exited before it was ready"))),
  ]);
  return {
    pid: proc.pid!,
    logs,
    stop: async () => {
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

async function measurePipelines(): Promise<Measured[]> {
  const scratch = await mkdtemp(join(tmpdir(), "vp-bench-runs-"));
  const dbName = `vp_bench_runs_${process.pid}`;
  const adminUrl = withDatabase(testServerUrl(), dbName);
  await migrate({ adminUrl });
  const admin = createPool({ url: adminUrl, applicationName: "bench-runs-setup", max: 2 });
  // The CPU meter's connection: to the server's maintenance database, so its own backend is not one it counts.
  const monitor = createPool({ url: testServerUrl(), applicationName: "bench-runs-cpu", max: 1 });
  const bus = await createTestBus();
  const release = async () => {
    await bus.cleanup();
    await admin.end();
    await monitor.end();
    await dropDatabase(dbName);
    await rm(scratch, { recursive: true, force: true });
  };
  const stack = await startStack({
    databaseAdminUrl: adminUrl,
    namespace: bus.topology.namespace,
    storageRoot: join(scratch, "storage"),
    workRoot: join(scratch, "work"),
    env: {
      LOG_LEVEL: "info",
      JOB_CONCURRENCY: String(CONCURRENCY),
      ...profileEnv(PROFILE_DIR),
    },
    services: ["state-writer", "scheduler", "executor-ffmpeg", "gateway"],
  }).catch(async (error: unknown) => {
    await release();
    throw error;
  });
  let noop: Awaited<ReturnType<typeof startNoopExecutor>> | undefined;
  try {
    const token = await stack.token();
    const call = apiCaller(stack.baseUrl, token);
    const scheduler = stack.services.get("scheduler")!;
    const tag = randomUUID().slice(0, 8);
    // Shared processes, found once: nats-server and the Postgres auxiliary processes (WAL writer, checkpointer...).
    const shared = [
      ...(await pidsMatching(/(^|\/)nats-server( |$)/)).map((p) => ({ pid: p.pid, label: "nats-server (shared)" })),
      ...(
        await pidsMatching(/^postgres: .*(walwriter|checkpointer|background writer|autovacuum launcher|logical replication launcher|stats collector|archiver)/)
      ).map((p) => ({
        pid: p.pid,
        label: "postgres auxiliary: walwriter, checkpointer... (shared)",
      })),
    ];
    const meter = new CpuMeter(
      () => [
        ...[...stack.services].map(([name, s]) => ({ pid: s.pid, label: name })),
        ...(noop ? [{ pid: noop.pid, label: "executor-bench (noop executor)" }] : []),
        ...shared,
      ],
      monitor,
      dbName,
    );

    const create = async (title: string, nodes: ReturnType<typeof wideNodes> | ReturnType<typeof chainNodes>) => {
      const { pipeline } = await importPipeline(admin, { pipeline: { id: randomUUID(), title }, nodes });
      return pipeline.id;
    };

    const run = async (pipelineId: string, shape: Measured["shape"], mode: Measured["mode"], workLogs: () => Log[]): Promise<Measured> => {
      const from = scheduler.logs.length;
      await meter.start();
      const t0 = Date.now();
      const started = await call("POST", `/pipelines/${pipelineId}/execute`);
      const acceptedMs = Date.now() - t0;
      const runId = started.run_id as string;
      const finished = await nextLog(scheduler.logs, from, (l) => l.msg === "run finished" && l.runId === runId, RUN_TIMEOUT_MS);
      const cpu = await meter.stop();
      const wallMs = Date.parse(String(finished.time)) - t0;
      if (finished.status !== "completed") throw new Error(`run ${runId} ended ${String(finished.status)}: ${JSON.stringify(finished.counts)}`);
      const workMs = workLogs()
        .filter((l) => l.msg === "work completed" && l.pipelineId === pipelineId)
        .reduce((sum, l) => sum + Number(l.workSeconds) * 1000, 0);
      const orchestrationMs = shape === "chain" ? wallMs - workMs : wallMs;
      const m: Measured = {
        shape,
        mode,
        nodes: NODES,
        wallMs,
        acceptedMs,
        workMs: round(workMs),
        orchestrationMs,
        executed: Number(finished.executed),
        cached: Number(finished.cached),
        cpu,
      };
      const { cpu: _cpu, ...shown } = m;
      console.error(
        `[bench:runs] ${shape} ${mode}: ${JSON.stringify(shown)} (load ${loadavg()
          .map((x) => x.toFixed(2))
          .join(" ")})`,
      );
      printCpu(`${shape} ${mode}`, NODES, cpu);
      return m;
    };

    const results: Measured[] = [];
    const executorFfmpeg = stack.services.get("executor-ffmpeg")! as ServiceProcess;
    if (SHAPES.has("wide")) {
      results.push(await run(await create("bench wide", wideNodes(tag)), "wide", "cold", () => executorFfmpeg.logs));
      results.push(await run(await create("bench wide (cached)", wideNodes(tag)), "wide", "cached", () => executorFfmpeg.logs));
    }
    if (!SHAPES.has("chain")) return results;

    await executorFfmpeg.stop();
    noop = await startNoopExecutor({ ...stack.env, WORK_ROOT: join(stack.env.WORK_ROOT!, "executor-bench") });
    const noopLogs = noop.logs;
    results.push(await run(await create("bench chain", chainNodes(tag)), "chain", "cold", () => noopLogs));
    results.push(await run(await create("bench chain (cached)", chainNodes(tag)), "chain", "cached", () => noopLogs));
    return results;
  } finally {
    if (LOGS_DIR) {
      await mkdir(LOGS_DIR, { recursive: true });
      const all: [string, Log[]][] = [
        ...[...stack.services].map(([n, s]): [string, Log[]] => [n, s.logs]),
        ...(noop ? [["executor-bench", noop.logs] as [string, Log[]]] : []),
      ];
      for (const [n, logs] of all) await writeFile(join(LOGS_DIR, `${n}.jsonl`), logs.map((l) => JSON.stringify(l)).join("\n"));
    }
    await noop?.stop();
    await stack.stop();
    await release();
  }
}

interface BullMeasured {
  shape: "wide" | "chain";
  nodes: number;
  wallMs: number;
}

async function measureBullmq(): Promise<BullMeasured[]> {
  const connection = { host: "127.0.0.1", port: 6379 };
  const name = `vp-bench-runs-${process.pid}`;
  const queue = new Queue(name, { connection });
  const flows = new FlowProducer({ connection });
  let onCompleted: (id: string) => void = () => undefined;
  const worker = new Worker(name, async () => ({ ok: true }), { connection, concurrency: CONCURRENCY });
  worker.on("completed", (job) => onCompleted(job.id!));
  await Promise.all([queue.waitUntilReady(), worker.waitUntilReady(), flows.waitUntilReady()]);
  try {
    const results: BullMeasured[] = [];

    // Wide: independent jobs, until every one has completed.
    {
      let left = NODES;
      const done = new Promise<void>((r) => (onCompleted = () => --left === 0 && r()));
      const t0 = performance.now();
      await queue.addBulk(Array.from({ length: NODES }, (_, i) => ({ name: "node", data: { i } })));
      await done;
      results.push({ shape: "wide", nodes: NODES, wallMs: performance.now() - t0 });
    }

    // Chain: each job the only child of the next; the root runs last.
    {
      let flow: FlowJob = { name: "node", queueName: name, data: { i: 0 } };
      for (let i = 1; i < NODES; i++) flow = { name: "node", queueName: name, data: { i }, children: [flow] };
      let rootId = "";
      const done = new Promise<void>((r) => (onCompleted = (id) => id === rootId && r()));
      const t0 = performance.now();
      const tree = await flows.add(flow);
      rootId = tree.job.id!;
      await done;
      results.push({ shape: "chain", nodes: NODES, wallMs: performance.now() - t0 });
    }
    return results;
  } finally {
    await worker.close();
    await flows.close();
    await queue.obliterate({ force: true });
    await queue.close();
  }
}

const loadAtStart = loadavg();
const ours = await measurePipelines();
const bull = await measureBullmq();
const loadAtEnd = loadavg();

const perSecond = (nodes: number, ms: number) => (nodes / ms) * 1000;
const rows = ours.map((m) => {
  const b = bull.find((x) => x.shape === m.shape)!;
  const oursRate = perSecond(m.nodes, m.orchestrationMs);
  const bullRate = perSecond(b.nodes, b.wallMs);
  return {
    ...m,
    perNodeMs: m.orchestrationMs / m.nodes,
    nodesPerSecond: oursRate,
    bullmq: { ...b, perNodeMs: b.wallMs / b.nodes, nodesPerSecond: bullRate },
    ratio: oursRate / bullRate,
  };
});

console.log(
  `\n| shape | run | nodes | ours: wall ms | work ms (subtracted) | orchestration ms | per node ms | nodes/s | BullMQ ms | BullMQ per node ms | BullMQ nodes/s | ours / BullMQ (nodes/s) |`,
);
console.log(`|---|---|---|---|---|---|---|---|---|---|---|---|`);
for (const r of rows) {
  const subtracted = r.shape === "chain" ? `${round(r.workMs, 0)}` : `0 (${round(r.workMs, 0)} overlapped)`;
  console.log(
    `| ${r.shape} | ${r.mode} (${r.executed} executed, ${r.cached} cached) | ${r.nodes} | ${round(r.wallMs, 0)} | ${subtracted} | ${round(r.orchestrationMs, 0)} | ${round(r.perNodeMs)} | ${round(r.nodesPerSecond, 0)} | ${round(r.bullmq.wallMs, 0)} | ${round(r.bullmq.perNodeMs, 3)} | ${round(r.bullmq.nodesPerSecond, 0)} | ${round(r.ratio, 3)}x |`,
  );
}
const wideCold = rows.find((r) => r.shape === "wide" && r.mode === "cold");
const verdict = (ok: boolean) => (ok ? "met" : "NOT met");
if (wideCold) console.log(`\nTargets (b): wide >= 1,000 nodes/s -> ${verdict(wideCold.nodesPerSecond >= 1000)} (${round(wideCold.nodesPerSecond, 0)} cold);`);
for (const r of rows) console.log(`  >= 0.5x BullMQ, ${r.shape} ${r.mode} -> ${verdict(r.ratio >= 0.5)} (${round(r.ratio, 3)}x)`);

// CPU per node per process, one column per run; the last rows give the physical ceiling on this machine.
const labels = [...new Set(rows.flatMap((r) => Object.keys(r.cpu.byProcess)))].sort(
  (a, b) => Math.max(...rows.map((r) => r.cpu.byProcess[b] ?? 0)) - Math.max(...rows.map((r) => r.cpu.byProcess[a] ?? 0)),
);
const cell = (ms: number | undefined, nodes: number) => (ms === undefined ? "-" : (ms / nodes).toFixed(2));
console.log(`\nCPU ms per node, by process (utime + stime over the run; ${CORES} cores):\n`);
console.log(`| process | ${rows.map((r) => `${r.shape} ${r.mode}`).join(" | ")} |`);
console.log(`|---|${rows.map(() => "---").join("|")}|`);
for (const label of labels) console.log(`| ${label} | ${rows.map((r) => cell(r.cpu.byProcess[label], r.nodes)).join(" | ")} |`);
console.log(`| **stack total** | ${rows.map((r) => `**${cell(r.cpu.stackMs, r.nodes)}**`).join(" | ")} |`);
console.log(`| cores busy on average (stack CPU / wall) | ${rows.map((r) => (r.cpu.stackMs / r.cpu.wallMs).toFixed(2)).join(" | ")} |`);
console.log(
  `| physical ceiling, nodes/s (${CORES} x 1,000 / total) | ${rows.map((r) => String(Math.round((CORES * 1000 * r.nodes) / r.cpu.stackMs))).join(" | ")} |`,
);
console.log(`| measured nodes/s | ${rows.map((r) => String(Math.round(r.nodesPerSecond))).join(" | ")} |`);
console.log(`| (this bench process: log parsing, not counted) | ${rows.map((r) => cell(r.cpu.benchMs, r.nodes)).join(" | ")} |`);
console.log(
  `Load average at start ${loadAtStart.map((x) => x.toFixed(2)).join(" ")}, at end ${loadAtEnd.map((x) => x.toFixed(2)).join(" ")}; executor concurrency ${CONCURRENCY}.`,
);

const out = resolve(import.meta.dirname, "results");
await mkdir(out, { recursive: true });
await writeFile(join(out, "runs.json"), JSON.stringify({ at: new Date().toISOString(), concurrency: CONCURRENCY, loadAtStart, loadAtEnd, rows }, null, 2));
process.exit(0);
