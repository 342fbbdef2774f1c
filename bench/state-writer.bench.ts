/**
 * `npm run bench`, part (e): state-writer transitions per second against pgbench running the identical
 * UPDATE with the same number of clients, on the same database, in the same run.
 *
 * Workload: progress ticks, the state-writer's most frequent transition. One pipeline of BENCH_SW_NODES nodes
 * (default 1,000), all in_progress; BENCH_SW_CLIENTS clients (default 8), client i ticking node i: each sends a
 * tick, waits for its answer, sends the next, for BENCH_SW_SECONDS (default 8) per measurement. Every tick has its
 * own percent, so every answered tick is a committed write and its own event (own event id).
 * - pgbench: the statement the state-writer runs for one tick (PROGRESS_TICK_SQL in packages/db/src/ticks.ts: the
 *   guarded UPDATE with its RETURNING and the pipeline metadata read), client i on node i, prepared, one statement
 *   per transaction, with synchronous_commit off as ticks commit (pgbench with synchronous_commit on is printed as a
 *   reference for durable commits).
 * - state-writer: the service's own handler (`createApplyStateEvent` with the tick queue of handlers/ticks.ts, the
 *   statements of packages/db/src/ticks.ts on a tick pool, the publish of each committed event to a real JetStream
 *   stream, each caller answered after its publish ack) called in-process, so the NATS consume/ack hop in front of it
 *   is not counted.
 *   - unbatched (STATE_WRITER_BATCH_MAX=1): every tick is its own transaction, one autocommit UPDATE statement, up to
 *     8 at once on 8 connections (as pgbench's clients); nothing coalesced.
 *   - batched (STATE_WRITER_BATCH_MAX=64): the ticks that arrive while the running statements (at most 2) execute are
 *     written together by ONE multi-row UPDATE (a node's waiting ticks would be coalesced, but in this closed loop a
 *     client has one tick in flight, so none are: every tick is still written and published).
 *   - diagnostic: batched with the publish stubbed out (not a product path): the statements alone, to show what the
 *     JetStream publish and its ack cost.
 *   - backlog: batched, but each client keeps BENCH_SW_BACKLOG (default 4) ticks of its node in flight, as executors
 *     send ticks without waiting: a node's waiting ticks are coalesced (the latest written, the others answered
 *     "superseded"). Reports committed writes/s and ticks answered/s; not the target's measure.
 *   - reference: the transaction form ticks had before (recordProgress through the pipeline's group-commit queue:
 *     BEGIN, pipeline FOR UPDATE, node FOR UPDATE, UPDATE, COMMIT; savepoints when batched), STATE_WRITER_BATCH_MAX=64.
 * Rates count committed node writes (the sum of state_version before and after) per second of the measurement.
 * Each state-writer mode first runs BENCH_SW_WARMUP_SECONDS (default 2) unmeasured; then each mode runs BENCH_SW_ROUNDS
 * times (default 3), alternating; the median is reported. Prints a markdown table
 * and writes bench/results/state-writer.json. Targets: state-writer unbatched >= 0.7x pgbench; batched above it.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createLogger } from "@vp/telemetry";
import { createTestBus, createTestDatabase, insertNodeFixture, insertPipelineFixture } from "@vp/testkit";
import type { StateEvent } from "@vp/contracts";
import { createPool, createTickPool, PROGRESS_TICK_SQL, withDatabase } from "@vp/db";
import { CpuMeter, pidsMatching, type CpuReport } from "./proc";
import { createApplyStateEvent } from "../services/state-writer/src/handlers/apply-state-event";
import { createBatchingQueue, createCommittedPublisher } from "../services/state-writer/src/handlers/committed";
import { createPipelineMetadataLog } from "../services/state-writer/src/handlers/pipeline-metadata";
import { createTickQueue } from "../services/state-writer/src/handlers/ticks";

const NODES = Number(process.env.BENCH_SW_NODES ?? 1000);
const CLIENTS = Number(process.env.BENCH_SW_CLIENTS ?? 8);
const SECONDS = Number(process.env.BENCH_SW_SECONDS ?? 8);
const ROUNDS = Number(process.env.BENCH_SW_ROUNDS ?? 3);
const WARMUP_SECONDS = Number(process.env.BENCH_SW_WARMUP_SECONDS ?? 2);
const BATCH_MAX = 64;
const PGBENCH = existsSync("/usr/lib/postgresql/15/bin/pgbench") ? "/usr/lib/postgresql/15/bin/pgbench" : "pgbench";
if (CLIENTS > NODES) throw new Error("BENCH_SW_CLIENTS must not exceed BENCH_SW_NODES");

const PIPELINE = "bench-sw";
const nodeId = (i: number) => `n${i}`;
const jobId = (i: number) => `j-n${i}`;

type Mode =
  | "pgbench"
  | "pgbench-durable"
  | "state-writer-unbatched"
  | "state-writer-batched"
  | "state-writer-batched-no-publish"
  | "state-writer-backlog"
  | "state-writer-transactions";
const ALL_MODES: Mode[] = [
  "pgbench",
  "state-writer-unbatched",
  "state-writer-batched",
  "state-writer-batched-no-publish",
  "state-writer-backlog",
  "state-writer-transactions",
  "pgbench-durable",
];
/** state-writer-backlog: ticks each client keeps in flight for its node (an executor does not wait for its answers). */
const BACKLOG = Number(process.env.BENCH_SW_BACKLOG ?? 4);
/** BENCH_SW_MODES: a comma-separated subset, for experiments (the table needs all). */
const MODES = process.env.BENCH_SW_MODES ? ALL_MODES.filter((m) => process.env.BENCH_SW_MODES!.split(",").includes(m)) : ALL_MODES;

const loadAtStart = loadavg();
const t = await createTestDatabase({ maxPerPool: 10 });
const tickPool = createTickPool({ url: t.urls.stateWriter, applicationName: "bench-state-writer-ticks", max: CLIENTS, onError: () => {} });
const testBus = await createTestBus({ logger: createLogger({ service: "bench", level: "warn" }) });
const logger = createLogger({ service: "state-writer-bench", level: "warn" });
const workDir = await mkdtemp(join(tmpdir(), "vp-bench-sw-"));
const samples = new Map<Mode, number[]>(MODES.map((m) => [m, []]));
/** CPU per committed write, by process group, of every measured run of each mode (µs; see cpuPerWrite). */
const cpuSamples = new Map<Mode, Array<Record<string, number>>>(MODES.map((m) => [m, []]));
/** Ticks answered per second (state-writer modes); equal to the committed writes unless ticks were coalesced. */
const answeredSamples = new Map<Mode, number[]>(MODES.map((m) => [m, []]));
/** A distinct percent for every tick of the run (a node's ticks never repeat one: each is a write and an event). */
let tickCount = 0;
const nextPercent = () => (++tickCount % 10_000_000) / 100_000;

// CPU accounting of each measurement: this process (the state-writer's handler and its clients, in-process), the test
// database's Postgres backends by application (pgbench, the tick pool...), nats-server (shared) and the pgbench
// client. Read from /proc every 100 ms through a monitor connection to another database (not counted).
const monitor = createPool({ url: withDatabase(t.adminUrl, "postgres"), applicationName: "bench-cpu-monitor", max: 1, onError: () => {} });
const natsServer = (await pidsMatching(/(^|\/)nats-server( |$)/)).map((p) => ({ pid: p.pid, label: "nats-server" }));
let pgbenchPid: number | undefined;
const meter = new CpuMeter(() => [...natsServer, ...(pgbenchPid ? [{ pid: pgbenchPid, label: "pgbench client" }] : [])], monitor, t.name, 100);
/** µs of CPU per committed write, by group: "node" (this process), "postgres", "nats-server", "pgbench client". */
const cpuPerWrite = (cpu: CpuReport, writes: number): Record<string, number> => {
  const groups: Record<string, number> = { node: cpu.benchMs };
  for (const [label, ms] of Object.entries(cpu.byProcess)) {
    const group = label.startsWith("postgres backends") ? "postgres" : label;
    groups[group] = (groups[group] ?? 0) + ms;
  }
  return Object.fromEntries(Object.entries(groups).map(([k, ms]) => [k, (ms * 1000) / writes]));
};

try {
  await insertPipelineFixture(t.admin, { id: PIPELINE });
  await insertNodeFixture(t.admin, { pipelineId: PIPELINE, id: nodeId(0), status: "in_progress", metadata: { jobId: jobId(0), attempt: 1 } });
  await t.admin.query(
    `INSERT INTO video_production_nodes (id, pipeline_id, title, type, inputs, config, asset, status, metadata, output, state_version)
     SELECT 'n' || g, pipeline_id, title, type, inputs, config, asset, status, jsonb_set(metadata, '{jobId}', to_jsonb('j-n' || g)), output, 0
     FROM video_production_nodes, generate_series(1, $2::int - 1) g WHERE pipeline_id = $1 AND id = 'n0'`,
    [PIPELINE, NODES],
  );
  await t.admin.query(`VACUUM ANALYZE video_production_nodes`);

  // The state-writer's own tick statement, its parameters as pgbench variables: client i on node i, a random percent.
  const pgbenchParams: Record<string, string> = { 1: `'${PIPELINE}'`, 2: `('n' || :client_id)`, 3: `('j-n' || :client_id)`, 4: "1", 5: ":p" };
  const script = join(workDir, "progress.sql");
  await writeFile(
    script,
    [
      `\\set p random(0, 10000000) / 100000.0`,
      `${PROGRESS_TICK_SQL.replace(/\$(\d)/g, (_, i: string) => pgbenchParams[i]!).replace(/\s*\n\s*/g, " ")};`,
      "",
    ].join("\n"),
  );

  const pgbench = (synchronousCommit: "on" | "off") =>
    new Promise<{ tps: number; writes: number }>((done, fail) => {
      const child = spawn(
        PGBENCH,
        ["-n", "-M", "prepared", "-c", String(CLIENTS), "-j", String(Math.min(CLIENTS, 2)), "-T", String(SECONDS), "-f", script, t.urls.stateWriter],
        { env: { ...process.env, PGOPTIONS: `-c synchronous_commit=${synchronousCommit}` }, stdio: ["ignore", "pipe", "pipe"] },
      );
      pgbenchPid = child.pid;
      let out = "";
      child.stdout.on("data", (d) => (out += d));
      child.stderr.on("data", (d) => (out += d));
      child.on("error", fail);
      child.on("close", (code) => {
        pgbenchPid = undefined;
        const tps = /tps = ([\d.]+)/.exec(out);
        const processed = /number of transactions actually processed: (\d+)/.exec(out);
        if (code !== 0 || !tps || !processed) fail(new Error(`pgbench exited ${code}: ${out}`));
        else done({ tps: Number(tps[1]), writes: Number(processed[1]) });
      });
    });

  const committedVersions = async () => {
    const { rows } = await t.admin.query<{ v: string }>(`SELECT sum(state_version)::text AS v FROM video_production_nodes WHERE pipeline_id = $1`, [PIPELINE]);
    return Number(rows[0]?.v ?? 0);
  };

  const stateWriter = async (mode: Mode, seconds = SECONDS): Promise<{ written: number; answered: number; writes: number }> => {
    const batchMax = mode === "state-writer-unbatched" ? 1 : BATCH_MAX;
    const pipelineMetadata = createPipelineMetadataLog();
    const queue = createBatchingQueue({ db: t.pools.stateWriter, batchMax, pipelineMetadata });
    // Diagnostic only: the same path with the publish stubbed out, to show what the JetStream publish + ack costs.
    const publishCommitted =
      mode === "state-writer-batched-no-publish" ? async () => {} : createCommittedPublisher({ bus: testBus.bus, topology: testBus.topology, logger });
    const ticks =
      mode === "state-writer-transactions"
        ? undefined
        : createTickQueue({ db: tickPool, publishCommitted, batchMax, concurrency: batchMax === 1 ? CLIENTS : undefined, pipelineMetadata });
    const apply = createApplyStateEvent({ db: t.pools.stateWriter, publishCommitted, queue, ticks });
    const ctx = { logger };
    let answered = 0;
    const before = await committedVersions();
    const until = performance.now() + seconds * 1000;
    const started = performance.now();
    const lanes = mode === "state-writer-backlog" ? BACKLOG : 1;
    await Promise.all(
      Array.from({ length: CLIENTS * lanes }, async (_, lane) => {
        const i = lane % CLIENTS;
        while (performance.now() < until) {
          const event: StateEvent = {
            v: 1,
            kind: "progress",
            pipelineId: PIPELINE,
            nodeId: nodeId(i),
            jobId: jobId(i),
            attempt: 1,
            at: new Date().toISOString(),
            percent: nextPercent(),
          };
          await apply(event, ctx);
          answered++;
        }
      }),
    );
    const elapsed = (performance.now() - started) / 1000;
    const committed = (await committedVersions()) - before;
    // With one tick in flight per node every tick answered is a committed write (distinct percents: none coalesced).
    if (committed !== answered && mode !== "state-writer-backlog") {
      console.error(`[bench:state-writer] ${mode}: ${answered} ticks answered but ${committed} writes committed`);
    }
    return { written: committed / elapsed, answered: answered / elapsed, writes: committed };
  };

  // Unmeasured: the JIT, the pools' connections and their prepared statements warm up before round 1.
  for (const mode of MODES) if (!mode.startsWith("pgbench")) await stateWriter(mode, WARMUP_SECONDS);
  for (let round = 1; round <= ROUNDS; round++) {
    for (const mode of MODES) {
      let tps: number;
      let answered: number | undefined;
      let writes: number;
      await meter.start();
      if (mode === "pgbench") ({ tps, writes } = await pgbench("off"));
      else if (mode === "pgbench-durable") ({ tps, writes } = await pgbench("on"));
      else ({ written: tps, answered, writes } = await stateWriter(mode));
      const cpu = cpuPerWrite(await meter.stop(), writes);
      cpuSamples.get(mode)!.push(cpu);
      samples.get(mode)!.push(tps);
      if (answered !== undefined) answeredSamples.get(mode)!.push(answered);
      const ticks = answered !== undefined && Math.round(answered) !== Math.round(tps) ? ` (${answered.toFixed(0)} ticks answered/s)` : "";
      console.error(
        `[bench:state-writer] round ${round} ${mode}: ${tps.toFixed(0)} transitions/s${ticks} (load ${loadavg()
          .map((x) => x.toFixed(2))
          .join(" ")})`,
      );
    }
  }
} finally {
  await testBus.cleanup().catch(() => {});
  await tickPool.end().catch(() => {});
  await monitor.end().catch(() => {});
  await t.drop().catch(() => {});
  await rm(workDir, { recursive: true, force: true });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const m = Object.fromEntries(MODES.map((mode) => [mode, median(samples.get(mode)!)])) as Record<Mode, number>;
const answeredMedian = Object.fromEntries(MODES.filter((mode) => answeredSamples.get(mode)!.length).map((mode) => [mode, median(answeredSamples.get(mode)!)]));
// Where the CPU goes, per committed write (median per group over the rounds), and the ceiling that sets on this
// machine's cores: the state-writer modes run in this process, so "this process" is the handler, its publishes and
// its clients' loop; pgbench's own client is a separate C process.
const CORES = availableParallelism();
const GROUPS: Array<[string, string]> = [
  ["node", "this process (state-writer handler + clients)"],
  ["postgres", "Postgres backends"],
  ["nats-server", "nats-server"],
  ["pgbench client", "pgbench client"],
];
const cpuMedian = Object.fromEntries(
  MODES.map((mode) => {
    const runs = cpuSamples.get(mode)!;
    const byGroup = Object.fromEntries(GROUPS.map(([g]) => [g, median(runs.map((r) => r[g] ?? 0))]));
    return [mode, { ...byGroup, total: median(runs.map((r) => Object.values(r).reduce((a, b) => a + b, 0))) }];
  }),
) as unknown as Record<Mode, Record<string, number>>;
console.log(`\nCPU per committed write, µs (utime + stime from /proc; median of the rounds; ${CORES} cores):\n`);
console.log(`| mode | ${GROUPS.map(([, label]) => label).join(" | ")} | total | ceiling on ${CORES} cores, writes/s |`);
console.log(`|---|${GROUPS.map(() => "---|").join("")}---|---|`);
for (const mode of MODES) {
  const c = cpuMedian[mode];
  console.log(`| ${mode} | ${GROUPS.map(([g]) => c[g]!.toFixed(1)).join(" | ")} | ${c.total!.toFixed(1)} | ${Math.round((CORES * 1e6) / c.total!)} |`);
}

if (MODES.length < ALL_MODES.length) process.exit(0);
const loadAtEnd = loadavg();
const unbatchedRatio = m["state-writer-unbatched"] / m.pgbench;
const batchedRatio = m["state-writer-batched"] / m.pgbench;
const rows = [
  {
    what: `pgbench: the state-writer's tick statement, ${CLIENTS} clients, one statement per transaction, synchronous_commit off (baseline)`,
    tps: m.pgbench,
    ratio: 1,
  },
  {
    what: `state-writer unbatched (STATE_WRITER_BATCH_MAX=1): one transaction (one UPDATE statement) per tick, ${CLIENTS} at once, each published and acked`,
    tps: m["state-writer-unbatched"],
    ratio: unbatchedRatio,
  },
  {
    what: `state-writer batched (STATE_WRITER_BATCH_MAX=${BATCH_MAX}): waiting ticks as one multi-row UPDATE, each published and acked`,
    tps: m["state-writer-batched"],
    ratio: batchedRatio,
  },
  {
    what: `diagnostic: batched with the publish stubbed out (no event, not a product path): what the statements alone do`,
    tps: m["state-writer-batched-no-publish"],
    ratio: m["state-writer-batched-no-publish"] / m.pgbench,
  },
  {
    what:
      `backlog, batched: ${BACKLOG} ticks in flight per client (no waiting, as executors send them): a node's waiting ticks coalesced; ` +
      `${(answeredMedian["state-writer-backlog"] ?? 0).toFixed(0)} ticks answered/s from these writes`,
    tps: m["state-writer-backlog"],
    ratio: m["state-writer-backlog"] / m.pgbench,
  },
  {
    what: `reference: ticks as before, transactions in the pipeline's group-commit queue (pipeline and node locks), batch ${BATCH_MAX}`,
    tps: m["state-writer-transactions"],
    ratio: m["state-writer-transactions"] / m.pgbench,
  },
  { what: `reference: pgbench, synchronous_commit on (a WAL flush per UPDATE)`, tps: m["pgbench-durable"], ratio: m["pgbench-durable"] / m.pgbench },
];
console.log(
  `\nState-writer progress ticks vs pgbench (median of ${ROUNDS} x ${SECONDS} s; ${CLIENTS} clients, each waiting for its answer; ` +
    `load ${loadAtStart.map((x) => x.toFixed(1)).join(" ")} -> ${loadAtEnd.map((x) => x.toFixed(1)).join(" ")})\n`,
);
console.log("| what | transitions/s | ratio to pgbench |");
console.log("|---|---|---|");
for (const r of rows) console.log(`| ${r.what} | ${r.tps.toFixed(0)} | ${r.ratio.toFixed(2)}x |`);
const verdict = (ok: boolean) => (ok ? "met" : "not met");
console.log(
  `\nTargets: unbatched >= 0.7x pgbench -> ${verdict(unbatchedRatio >= 0.7)} (${unbatchedRatio.toFixed(2)}x); ` +
    `batched past pgbench -> ${verdict(batchedRatio > 1)} (${batchedRatio.toFixed(2)}x). ` +
    `The state-writer's figures include a JetStream publish and its ack per tick; the NATS consume hop in front is not counted.`,
);

const out = resolve(import.meta.dirname, "results", "state-writer.json");
await writeFile(
  out,
  JSON.stringify(
    {
      at: new Date().toISOString(),
      nodes: NODES,
      clients: CLIENTS,
      seconds: SECONDS,
      rounds: ROUNDS,
      batchMax: BATCH_MAX,
      loadAtStart,
      loadAtEnd,
      backlog: BACKLOG,
      samples: Object.fromEntries(samples),
      answeredSamples: Object.fromEntries(answeredSamples),
      median: m,
      answeredMedian,
      cpuPerWriteUs: cpuMedian,
      unbatchedRatio,
      batchedRatio,
    },
    null,
    2,
  ) + "\n",
);
console.error(`[bench:state-writer] wrote ${out}`);
process.exit(0);
