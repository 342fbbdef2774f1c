/**
 * `npm run bench`, part (f): a 1,000-row batch (BENCH_BATCH_ROWS) through the real services, submitted over HTTP.
 *
 * The template: a shared intro and outro (ElevenLabs voiceovers of fixed text: they depend on no variable) and per
 * row a text asset "Hello {{name}}" voiced by ElevenLabs. Every provider is the testkit's fake (startFakeProviders),
 * which runs in this bench process (espeak-ng and ffmpeg per speech), so its work is not in the services' CPU.
 * Rows run BENCH_BATCH_CONCURRENCY (16, the most a batch allows) at a time; the executors take
 * BENCH_BATCH_JOB_CONCURRENCY (8) jobs each.
 *
 * Measured, each phase on its own copy of the template (its own text, so no phase takes another's work from the
 * cache):
 * - baseline 1: the template as one plain run (run all): its wall time, against the batch's time per row;
 * - baseline 2: a 50-row batch (BENCH_BATCH_SMALL_ROWS): its rows/s, against the big batch's (how it scales);
 * - the big batch: wall time from the POST to the gateway's "batch finished" log line (target: under 5 minutes),
 *   rows/s, CPU per row of gateway + scheduler + state-writer (utime + stime from /proc; their Postgres backends
 *   shown apart), how often each shared node executed (must be 1; the bench fails otherwise), and the traffic of
 *   BENCH_BATCH_SSE_CLIENTS (3) clients of GET /batches/:id/events connected for the whole batch, in bytes per
 *   client per minute (target: under 1 MB).
 * Prints a markdown table and writes bench/results/batches.json.
 * BENCH_BATCH_PROFILE_DIR=dir writes a V8 CPU profile per service (bench/cpu-profile.mjs).
 */
import { get as httpGet } from "node:http";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { availableParallelism, loadavg } from "node:os";
import { join, resolve } from "node:path";
import { createPool } from "@vp/db";
import { startFakeProviders, startTestStack, testServerUrl } from "@vp/testkit";
import { CLK_TCK, CpuMeter, profileEnv, type CpuReport } from "./proc";
import { apiCaller } from "./http";

const ROWS = Number(process.env.BENCH_BATCH_ROWS ?? 1000);
const SMALL_ROWS = Number(process.env.BENCH_BATCH_SMALL_ROWS ?? 50);
const CONCURRENCY = Number(process.env.BENCH_BATCH_CONCURRENCY ?? 16);
const JOB_CONCURRENCY = Number(process.env.BENCH_BATCH_JOB_CONCURRENCY ?? 8);
const SSE_CLIENTS = Number(process.env.BENCH_BATCH_SSE_CLIENTS ?? 3);
const TIMEOUT_MS = Number(process.env.BENCH_BATCH_TIMEOUT_MS ?? 900_000);
const TARGET_WALL_MS = 5 * 60_000;
const TARGET_SSE_BYTES_PER_MINUTE = 1_000_000;
const PROFILE_DIR = process.env.BENCH_BATCH_PROFILE_DIR;
/** The processes whose CPU is the batch's orchestration. */
const ORCHESTRATION = ["gateway", "scheduler", "state-writer"] as const;
const SHARED = ["intro", "outro"];
const CORES = availableParallelism();

type Log = Record<string, unknown>;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (n: number, d = 2) => Math.round(n * 10 ** d) / 10 ** d;

/** CPU ms of this process's ended children (the fake providers' espeak-ng and ffmpeg): cutime + cstime of /proc/self/stat. */
async function childrenCpuMs(): Promise<number> {
  const stat = await readFile("/proc/self/stat", "utf8").catch(() => "");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(f[13]) + Number(f[14])) * 1000) / CLK_TCK || 0;
}

/** The first log line at or after `from` matching `predicate`. */
async function nextLog(logs: Log[], from: number, predicate: (l: Log) => boolean, timeoutMs: number): Promise<Log> {
  const deadline = Date.now() + timeoutMs;
  let i = from;
  for (;;) {
    for (; i < logs.length; i++) if (predicate(logs[i]!)) return logs[i]!;
    if (Date.now() > deadline) throw new Error(`log line not seen within ${timeoutMs} ms; last: ${JSON.stringify(logs.slice(-3))}`);
    await sleep(50);
  }
}

if (PROFILE_DIR) await mkdir(PROFILE_DIR, { recursive: true });
const fakes = await startFakeProviders();
const fixture = await startTestStack({
  prefix: "vp-bench-batches-",
  jobAckWaitMs: 30_000,
  env: { ...fakes.env, LOG_LEVEL: "info", JOB_CONCURRENCY: String(JOB_CONCURRENCY), ...profileEnv(PROFILE_DIR) },
});
const { stack, db } = fixture;
// The CPU meter's connection: to the server's maintenance database, so its own backend is not one it counts.
const monitor = createPool({ url: testServerUrl(), applicationName: "bench-batches-cpu", max: 1 });

try {
  const root = `${stack.baseUrl}/v1/video_production`;
  const token = await stack.token();
  const call = apiCaller(stack.baseUrl, token);
  const gateway = stack.services.get("gateway")!;
  const scheduler = stack.services.get("scheduler")!;
  const meter = new CpuMeter(() => [...stack.services].map(([name, s]) => ({ pid: s.pid, label: name })), monitor, db.name);

  /** A copy of the template; `tag` makes its texts (and so its cache keys) its own. */
  const template = async (tag: string): Promise<string> => {
    const { pipeline } = await call("POST", "/pipelines", { title: `Bench batch ${tag}` });
    const P = pipeline.id as string;
    await call("PUT", `/pipelines/${P}/variables`, { variables: [{ name: "name", type: "text", default: "friend" }] });
    const add = (node: Record<string, unknown>) => call("POST", `/pipelines/${P}/nodes`, { title: String(node.id), ...node });
    await add({ id: "intro", type: "generate-voiceover", config: { provider: "elevenlabs", script: `Welcome, ${tag}.` } });
    await add({ id: "outro", type: "generate-voiceover", config: { provider: "elevenlabs", script: `Thanks for watching, ${tag}.` } });
    await add({ id: "script", type: "asset", asset: { type: "text", content: `Hello {{name}}` } });
    await add({ id: "voice", type: "generate-voiceover", inputs: { script: ["script"] }, config: { provider: "elevenlabs" } });
    return P;
  };
  const rowsOf = (tag: string, n: number) => Array.from({ length: n }, (_, i) => ({ name: `${tag} ${i + 1}` }));

  /** Baseline 1: the template as one plain run, execute -> the scheduler's "run finished". */
  const plainRun = async () => {
    const P = await template("plain");
    const from = scheduler.logs.length;
    const t0 = Date.now();
    const { run_id: runId } = await call("POST", `/pipelines/${P}/execute`);
    const finished = await nextLog(scheduler.logs, from, (l) => l.msg === "run finished" && l.runId === runId, 120_000);
    if (finished.status !== "completed") throw new Error(`plain run ended ${String(finished.status)}`);
    return { wallMs: Date.parse(String(finished.time)) - t0 };
  };

  /** SSE clients of GET /batches/:id/events: bytes received and frames by event name, until closed. */
  const openBatchStream = async (batchId: string) => {
    const { token: streamToken } = await call("POST", `/batches/${batchId}/events/token`);
    const client = { bytes: 0, frames: {} as Record<string, number>, openedAt: Date.now(), closedBy: "", close: () => undefined as void };
    await new Promise<void>((ok, fail) => {
      const request = httpGet(
        `${root}/batches/${batchId}/events?token=${encodeURIComponent(streamToken)}`,
        { headers: { accept: "text/event-stream" } },
        (response) => {
          if (response.statusCode !== 200) return fail(new Error(`batch events: ${response.statusCode}`));
          ok();
          let tail = "";
          response.setEncoding("utf8").on("data", (chunk: string) => {
            client.bytes += Buffer.byteLength(chunk);
            const text = tail + chunk;
            const frames = text.split("\n\n");
            tail = frames.pop() ?? "";
            for (const f of frames) {
              const name = /^event: (\w+)/m.exec(f)?.[1] ?? "comment";
              client.frames[name] = (client.frames[name] ?? 0) + 1;
            }
          });
          response.on("close", () => (client.closedBy ||= "gateway"));
          response.on("error", () => undefined);
        },
      );
      request.on("error", fail);
      client.close = () => {
        client.closedBy ||= "bench";
        request.destroy();
      };
    });
    return client;
  };

  /** One batch: POST -> the gateway's "batch finished"; the CPU of every service and the SSE traffic meanwhile. */
  const batchRun = async (tag: string, rows: number, sseClients: number) => {
    const P = await template(tag);
    const from = gateway.logs.length;
    const fakeFrom = fakes.elevenlabs.history.length;
    await meter.start();
    const children0 = await childrenCpuMs();
    const t0 = Date.now();
    const { batch } = await call("POST", `/pipelines/${P}/batches`, { rows: rowsOf(tag, rows), concurrency: CONCURRENCY });
    const acceptedMs = Date.now() - t0;
    const clients = await Promise.all(Array.from({ length: sseClients }, () => openBatchStream(batch.id)));
    const finished = await nextLog(gateway.logs, from, (l) => l.msg === "batch finished" && l.batchId === batch.id, TIMEOUT_MS);
    const wallMs = Date.parse(String(finished.time)) - t0;
    const cpu = await meter.stop();
    const providersChildrenMs = (await childrenCpuMs()) - children0;
    // Let the streams send the batch's end, then measure each client's traffic over the time it was connected.
    await sleep(2500);
    const sse = clients.map((c) => {
      const minutes = (Date.now() - c.openedAt) / 60_000;
      c.close();
      return { bytes: c.bytes, minutes: round(minutes, 3), bytesPerMinute: Math.round(c.bytes / minutes), frames: c.frames, closedBy: c.closedBy };
    });
    if (finished.status !== "completed") throw new Error(`batch ${batch.id} ended ${String(finished.status)}: ${JSON.stringify(finished.counts)}`);

    // How often each node executed across the rows' pipelines (the rest completed from the cache).
    const { rows: nodeCounts } = await db.admin.query<{ id: string; executed: number; cached: number }>(
      `SELECT n.id, count(*) FILTER (WHERE coalesce(n.metadata ->> 'cached', 'false') <> 'true')::int AS executed,
              count(*) FILTER (WHERE n.metadata ->> 'cached' = 'true')::int AS cached
         FROM video_production_nodes n JOIN video_production_batch_rows r ON r.pipeline_id = n.pipeline_id
        WHERE r.batch_id = $1 GROUP BY n.id ORDER BY n.id`,
      [batch.id],
    );
    const executed = Object.fromEntries(nodeCounts.map((r) => [r.id, r.executed]));
    const cached = Object.fromEntries(nodeCounts.map((r) => [r.id, r.cached]));
    // The provider's side: how many speeches of each shared script it was asked for.
    const speeches = fakes.elevenlabs.history.slice(fakeFrom).map((e) => e.item.text);
    const providerCalls = {
      intro: speeches.filter((t) => t === `Welcome, ${tag}.`).length,
      outro: speeches.filter((t) => t === `Thanks for watching, ${tag}.`).length,
      total: speeches.length,
    };
    const orchestrationMs = ORCHESTRATION.reduce((sum, name) => sum + (cpu.byProcess[name] ?? 0), 0);
    const backendsMs = Object.entries(cpu.byProcess)
      .filter(([label]) => /^postgres backends: (gateway|scheduler|state-writer)/.test(label))
      .reduce((sum, [, ms]) => sum + ms, 0);
    const m = {
      tag,
      rows,
      acceptedMs,
      wallMs,
      rowsPerSecond: (rows / wallMs) * 1000,
      msPerRow: wallMs / rows,
      orchestrationCpuMsPerRow: orchestrationMs / rows,
      orchestrationBackendsCpuMsPerRow: backendsMs / rows,
      executed,
      cached,
      providerCalls,
      sse,
      cpu,
      /** CPU of the whole machine's work for the batch: the stack, this process (the fakes' HTTP) and the fakes' children. */
      allCpuMsPerRow: (cpu.stackMs + cpu.benchMs + providersChildrenMs) / rows,
      coresBusy: (cpu.stackMs + cpu.benchMs + providersChildrenMs) / cpu.wallMs,
      providersChildrenMs,
      timeline: rowTimeline(batch.id, from),
    };
    const { cpu: _cpu, ...shown } = m;
    console.error(
      `[bench:batches] ${rows} rows: ${JSON.stringify(shown)} (load ${loadavg()
        .map((x) => x.toFixed(2))
        .join(" ")})`,
    );
    printCpu(`${rows} rows`, rows, cpu, providersChildrenMs);
    return m;
  };

  /**
   * Where a row's time goes, from the services' log lines: the scheduler's "run started" and "run finished" of the
   * row's run, the gateway's "batch row started" (the run's verdict received) and "batch row finished" (the driver
   * recorded the ended run), and the driver's passes (bursts of those lines at least 200 ms apart).
   */
  function rowTimeline(batchId: string, gatewayFrom: number) {
    const at = (l: Log) => Date.parse(String(l.time));
    const own = gateway.logs.slice(gatewayFrom).filter((l) => l.batchId === batchId);
    const started = new Map(own.filter((l) => l.msg === "batch row started").map((l) => [String(l.runId), at(l)]));
    const recorded = new Map(own.filter((l) => l.msg === "batch row finished").map((l) => [String(l.runId), at(l)]));
    const runStarted = new Map<string, number>();
    const runFinished = new Map<string, number>();
    for (const l of scheduler.logs) {
      const id = String(l.runId);
      if (!recorded.has(id)) continue;
      if (l.msg === "run started") runStarted.set(id, at(l));
      if (l.msg === "run finished") runFinished.set(id, at(l));
    }
    const stats = (xs: number[]) => {
      const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
      const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? Number.NaN;
      return { n: s.length, p50: q(0.5), p90: q(0.9), max: s[s.length - 1] ?? Number.NaN };
    };
    const ids = [...recorded.keys()];
    const times = [...new Set(own.filter((l) => l.msg === "batch row started" || l.msg === "batch row finished").map(at))].sort((a, b) => a - b);
    const bursts = times.filter((t, i) => i === 0 || t - times[i - 1]! >= 200);
    return {
      runRecordedToVerdict: stats(ids.map((id) => started.get(id)! - runStarted.get(id)!)),
      runStartedToFinished: stats(ids.map((id) => runFinished.get(id)! - runStarted.get(id)!)),
      runFinishedToRowRecorded: stats(ids.map((id) => recorded.get(id)! - runFinished.get(id)!)),
      driverPasses: bursts.length,
      betweenPasses: stats(bursts.slice(1).map((t, i) => t - bursts[i]!)),
    };
  }

  const printCpu = (title: string, rows: number, cpu: CpuReport, childrenMs: number) => {
    console.error(`[bench:batches] CPU during ${title} (wall ${cpu.wallMs} ms; CLK_TCK ${CLK_TCK}, ${CORES} cores):`);
    for (const [label, ms] of Object.entries(cpu.byProcess).sort((a, b) => b[1] - a[1]))
      console.error(`    ${label.padEnd(44)} ${String(Math.round(ms)).padStart(7)} ms  ${(ms / rows).toFixed(2).padStart(8)} ms/row`);
    console.error(`    ${"(this bench process, fake providers included)".padEnd(44)} ${String(Math.round(cpu.benchMs)).padStart(7)} ms`);
    console.error(`    ${"(the fake providers' espeak-ng and ffmpeg)".padEnd(44)} ${String(Math.round(childrenMs)).padStart(7)} ms`);
  };

  const loadAtStart = loadavg();
  const plain = await plainRun();
  console.error(`[bench:batches] plain run of the template: ${plain.wallMs} ms`);
  const small = await batchRun("small", SMALL_ROWS, 0);
  const big = await batchRun("big", ROWS, SSE_CLIENTS);
  const loadAtEnd = loadavg();

  // Shared work runs once per batch, or the bench fails.
  const wrong = [small, big].flatMap((b) =>
    SHARED.filter((id) => b.executed[id] !== 1 || b.providerCalls[id as "intro" | "outro"] !== 1).map(
      (id) => `${b.rows} rows: ${id} executed ${b.executed[id]} times, the provider asked ${b.providerCalls[id as "intro" | "outro"]} times`,
    ),
  );

  const sseWorst = Math.max(...big.sse.map((c) => c.bytesPerMinute));
  console.log(`\n| measure | ${ROWS} rows | baseline (same run) | ratio | target | verdict |\n|---|---|---|---|---|---|`);
  const verdict = (ok: boolean) => (ok ? "met" : "**not met**");
  console.log(
    `| wall time, s | ${round(big.wallMs / 1000, 1)} | - | ${round(big.wallMs / TARGET_WALL_MS, 2)}x the target | < 300 s | ${verdict(big.wallMs < TARGET_WALL_MS)} |`,
  );
  console.log(
    `| rows/s | ${round(big.rowsPerSecond)} | ${SMALL_ROWS}-row batch ${round(small.rowsPerSecond)} | ${round(big.rowsPerSecond / small.rowsPerSecond)}x | - | |`,
  );
  console.log(`| wall ms per row | ${round(big.msPerRow, 0)} | one plain run ${plain.wallMs} | ${round(big.msPerRow / plain.wallMs, 3)}x | - | |`);
  console.log(
    `| orchestration CPU ms per row (gateway + scheduler + state-writer) | ${round(big.orchestrationCpuMsPerRow, 1)} | ${SMALL_ROWS}-row batch ${round(small.orchestrationCpuMsPerRow, 1)} | ${round(big.orchestrationCpuMsPerRow / small.orchestrationCpuMsPerRow)}x | - | |`,
  );
  console.log(
    `| their Postgres backends, CPU ms per row | ${round(big.orchestrationBackendsCpuMsPerRow, 1)} | ${SMALL_ROWS}-row batch ${round(small.orchestrationBackendsCpuMsPerRow, 1)} | ${round(big.orchestrationBackendsCpuMsPerRow / small.orchestrationBackendsCpuMsPerRow)}x | - | |`,
  );
  for (const id of SHARED)
    console.log(
      `| ${id} (shared) executions | ${big.executed[id]} (${big.cached[id]} from the cache; provider asked ${big.providerCalls[id as "intro" | "outro"]}) | ${SMALL_ROWS}-row batch ${small.executed[id]} | - | 1 | ${verdict(big.executed[id] === 1 && big.providerCalls[id as "intro" | "outro"] === 1)} |`,
    );
  console.log(
    `| SSE bytes per client per minute (${SSE_CLIENTS} clients, worst) | ${sseWorst.toLocaleString("en-US")} | - | ${round(sseWorst / TARGET_SSE_BYTES_PER_MINUTE, 3)}x the target | < 1 MB | ${verdict(sseWorst < TARGET_SSE_BYTES_PER_MINUTE)} |`,
  );
  console.log(
    `\nSSE clients: ${big.sse.map((c) => `${c.bytes.toLocaleString("en-US")} bytes over ${c.minutes} min, frames ${JSON.stringify(c.frames)}, closed by ${c.closedBy}`).join("; ")}.`,
  );
  console.log(
    `All CPU for the batch (services, their Postgres backends, nats-server not included, the fake providers and their espeak-ng/ffmpeg): ${round(big.allCpuMsPerRow, 1)} ms per row, ${round(big.coresBusy)} of ${CORES} cores busy on average; the machine's ceiling at that cost: ${round((CORES * 1000) / big.allCpuMsPerRow, 1)} rows/s.`,
  );
  console.log(`Where a row's time goes (ms; median / p90 / max): ${JSON.stringify(big.timeline)}.`);
  console.log(
    `Batch accepted (rows' pipelines created) in ${big.acceptedMs} ms; concurrency ${CONCURRENCY}, executor jobs ${JOB_CONCURRENCY}; load average at start ${loadAtStart.map((x) => x.toFixed(2)).join(" ")}, at end ${loadAtEnd.map((x) => x.toFixed(2)).join(" ")}.`,
  );

  const out = resolve(import.meta.dirname, "results");
  await mkdir(out, { recursive: true });
  await writeFile(
    join(out, "batches.json"),
    JSON.stringify(
      { at: new Date().toISOString(), concurrency: CONCURRENCY, jobConcurrency: JOB_CONCURRENCY, loadAtStart, loadAtEnd, plain, small, big, wrong },
      null,
      2,
    ),
  );
  if (wrong.length) {
    console.error(`\n[bench:batches] FAILED: shared work did not run exactly once per batch:\n  ${wrong.join("\n  ")}`);
    process.exitCode = 1;
  }
} finally {
  await fixture.cleanup();
  await fakes.close();
  await monitor.end();
}
process.exit(process.exitCode ?? 0);
