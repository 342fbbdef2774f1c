/**
 * `npm run bench`: orchestration overhead of the event-driven path (execute request -> completed event on
 * SSE, minus the executor's own work time) beside a BullMQ add -> completed round trip on the local Redis,
 * measured in the same run on the same machine. Prints a markdown table and writes bench/results/*.json.
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Queue, QueueEvents, Worker } from "bullmq";
import { createTestBus, openSse, startStack, dropDatabase, testServerUrl } from "@vp/testkit";
import { migrate, withDatabase } from "@vp/db";

const NODES = Number(process.env.BENCH_NODES ?? 200);
const WARMUP = 20;

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
};
const round = (n: number) => Math.round(n * 100) / 100;

async function measurePipeline(): Promise<number[]> {
  const scratch = await mkdtemp(join(tmpdir(), "vp-bench-"));
  const dbName = `vp_bench_${process.pid}`;
  const adminUrl = withDatabase(testServerUrl(), dbName);
  await migrate({ adminUrl });
  const bus = await createTestBus();
  const stack = await startStack({
    databaseAdminUrl: adminUrl,
    namespace: bus.topology.namespace,
    storageRoot: join(scratch, "storage"),
    workRoot: join(scratch, "work"),
    env: { LOG_LEVEL: "info", JOB_CONCURRENCY: "8" },
  });
  try {
    const root = `${stack.baseUrl}/v1/video_production`;
    const post = async (path: string, body?: unknown) => {
      const res = await fetch(`${root}${path}`, {
        method: "POST",
        headers: { authorization: `Bearer ${await stack.token()}`, ...(body ? { "content-type": "application/json" } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      if (!res.ok) throw new Error(`POST ${path}: ${res.status} ${await res.text()}`);
      return res.json() as Promise<any>;
    };
    const { pipeline } = await post("/pipelines", { title: "bench" });
    const total = NODES + WARMUP;
    for (let i = 0; i < total; i++) {
      await post(`/pipelines/${pipeline.id}/nodes`, { id: `n${i}`, title: `Script ${i}`, type: "asset", asset: { type: "text", content: `line ${i}` } });
    }
    const sse = openSse(`${root}/pipelines/${pipeline.id}/events`);
    await sse.waitFor((events) => events.some((e) => e.event === "snapshot"));
    const executor = stack.services.get("executor-ffmpeg")!;
    const overheads: number[] = [];
    for (let i = 0; i < total; i++) {
      const nodeId = `n${i}`;
      const t0 = performance.now();
      await post(`/pipelines/${pipeline.id}/nodes/${nodeId}/execute`);
      await sse.waitFor((events) => events.some((e) => e.event === "node" && (e.data as any).nodeId === nodeId && (e.data as any).status === "completed"), 30_000);
      const elapsed = performance.now() - t0;
      const done = await executor.waitForLog((l) => l.msg === "work completed" && l.nodeId === nodeId);
      if (i >= WARMUP) overheads.push(elapsed - Number(done.workSeconds) * 1000);
    }
    await sse.close();
    return overheads;
  } finally {
    await stack.stop();
    await bus.cleanup();
    await dropDatabase(dbName);
    await rm(scratch, { recursive: true, force: true });
  }
}

async function measureBullmq(): Promise<number[]> {
  const connection = { host: "127.0.0.1", port: 6379 };
  const name = `vp-bench-${process.pid}`;
  const queue = new Queue(name, { connection });
  const events = new QueueEvents(name, { connection });
  const worker = new Worker(name, async (job) => ({ echoed: job.data.i }), { connection, concurrency: 8 });
  await Promise.all([queue.waitUntilReady(), events.waitUntilReady(), worker.waitUntilReady()]);
  try {
    const times: number[] = [];
    for (let i = 0; i < NODES + WARMUP; i++) {
      const t0 = performance.now();
      const job = await queue.add("node", { i });
      await job.waitUntilFinished(events, 30_000);
      if (i >= WARMUP) times.push(performance.now() - t0);
    }
    return times;
  } finally {
    await worker.close();
    await events.close();
    await queue.obliterate({ force: true });
    await queue.close();
  }
}

const ours = await measurePipeline();
const bull = await measureBullmq();
const rows = [
  { name: "video-pipelines: execute -> completed on SSE, minus work", p50: percentile(ours, 50), p99: percentile(ours, 99), n: ours.length },
  { name: "BullMQ (local Redis): add -> completed", p50: percentile(bull, 50), p99: percentile(bull, 99), n: bull.length },
];
const ratio = { p50: rows[0]!.p50 / rows[1]!.p50, p99: rows[0]!.p99 / rows[1]!.p99 };
console.log(`\n| path | n | p50 ms | p99 ms |\n|---|---|---|---|`);
for (const r of rows) console.log(`| ${r.name} | ${r.n} | ${round(r.p50)} | ${round(r.p99)} |`);
console.log(`| ratio (ours / BullMQ) | | ${round(ratio.p50)}x | ${round(ratio.p99)}x |`);
console.log(`\nTarget: p99 overhead under 50 ms -> ${rows[0]!.p99 < 50 ? "met" : "NOT met"} (${round(rows[0]!.p99)} ms)`);
const out = resolve(import.meta.dirname, "results");
await mkdir(out, { recursive: true });
await writeFile(join(out, "orchestration.json"), JSON.stringify({ at: new Date().toISOString(), rows, ratio }, null, 2));
process.exit(0);
