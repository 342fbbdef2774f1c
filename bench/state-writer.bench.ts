/**
 * `npm run bench`, part (e) of issue 8: state-writer transitions per second against pgbench running the identical
 * UPDATE with the same number of clients, on the same database, in the same run.
 *
 * Workload: progress ticks, the state-writer's most frequent transition. One pipeline of BENCH_SW_NODES nodes
 * (default 1,000), all in_progress; BENCH_SW_CLIENTS clients (default 8), client i ticking node i: each sends a
 * tick, waits for its answer, sends the next, for BENCH_SW_SECONDS (default 8) per measurement.
 * - state-writer: the service's own handler (`createApplyStateEvent`: the batching queue, the guarded transition
 *   in packages/db, the publish of the committed event to a real JetStream stream) called in-process, so the
 *   NATS consume/ack hop in front of it is not counted; pool of 10 connections as in the service. Once with
 *   STATE_WRITER_BATCH_MAX=1 (one transaction per tick: BEGIN, pipeline row FOR UPDATE, node row FOR UPDATE,
 *   guarded UPDATE, COMMIT) and once with 64 (group commit: a pipeline's queued ticks in one transaction, a
 *   savepoint each).
 * - pgbench: the same guarded UPDATE statement (metadata || progress, state_version + 1, same WHERE and guard),
 *   one statement per transaction, -c clients, client i on node i, prepared.
 * Both commit the way progress ticks commit in the product: synchronous_commit = off (a lost tick is harmless);
 * pgbench with synchronous_commit = on is printed as a reference for durable commits.
 * Each mode runs BENCH_SW_ROUNDS times (default 3), alternating; the median is reported. Prints a markdown table
 * and writes bench/results/state-writer.json. Targets: state-writer unbatched >= 0.7x pgbench; batched above it.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createLogger } from "@vp/telemetry";
import { createTestBus, createTestDatabase, insertNodeFixture, insertPipelineFixture } from "@vp/testkit";
import type { StateEvent } from "@vp/contracts";
import { createApplyStateEvent } from "../services/state-writer/src/handlers/apply-state-event";
import { createBatchingQueue, createCommittedPublisher } from "../services/state-writer/src/handlers/committed";

const NODES = Number(process.env.BENCH_SW_NODES ?? 1000);
const CLIENTS = Number(process.env.BENCH_SW_CLIENTS ?? 8);
const SECONDS = Number(process.env.BENCH_SW_SECONDS ?? 8);
const ROUNDS = Number(process.env.BENCH_SW_ROUNDS ?? 3);
const BATCH_MAX = 64;
const PGBENCH = existsSync("/usr/lib/postgresql/15/bin/pgbench") ? "/usr/lib/postgresql/15/bin/pgbench" : "pgbench";
if (CLIENTS > NODES) throw new Error("BENCH_SW_CLIENTS must not exceed BENCH_SW_NODES");

const PIPELINE = "bench-sw";
const nodeId = (i: number) => `n${i}`;
const jobId = (i: number) => `j-n${i}`;

type Mode = "pgbench" | "pgbench-durable" | "state-writer-unbatched" | "state-writer-batched";
const MODES: Mode[] = ["pgbench", "state-writer-unbatched", "state-writer-batched", "pgbench-durable"];

const loadAtStart = loadavg();
const t = await createTestDatabase({ maxPerPool: 10 });
const testBus = await createTestBus({ logger: createLogger({ service: "bench", level: "warn" }) });
const logger = createLogger({ service: "state-writer-bench", level: "warn" });
const workDir = await mkdtemp(join(tmpdir(), "vp-bench-sw-"));
const samples = new Map<Mode, number[]>(MODES.map((m) => [m, []]));

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

  // The UPDATE recordProgress runs (packages/db/src/state.ts), with the client's node and a random percent.
  const script = join(workDir, "progress.sql");
  await writeFile(
    script,
    [
      `\\set p random(0, 100)`,
      `UPDATE video_production_nodes SET metadata = COALESCE(metadata, '{}'::jsonb) || jsonb_build_object('progress', :p::float8), state_version = state_version + 1 ` +
        `WHERE pipeline_id = '${PIPELINE}' AND id = 'n' || (:client_id) AND (status = 'in_progress' AND metadata ->> 'jobId' = 'j-n' || (:client_id) AND metadata -> 'attempt' = to_jsonb(1::int));`,
      "",
    ].join("\n"),
  );

  const pgbench = (synchronousCommit: "on" | "off") =>
    new Promise<number>((done, fail) => {
      const child = spawn(
        PGBENCH,
        ["-n", "-M", "prepared", "-c", String(CLIENTS), "-j", String(Math.min(CLIENTS, 2)), "-T", String(SECONDS), "-f", script, t.adminUrl],
        { env: { ...process.env, PGOPTIONS: `-c synchronous_commit=${synchronousCommit}` }, stdio: ["ignore", "pipe", "pipe"] },
      );
      let out = "";
      child.stdout.on("data", (d) => (out += d));
      child.stderr.on("data", (d) => (out += d));
      child.on("error", fail);
      child.on("close", (code) => {
        const tps = /tps = ([\d.]+)/.exec(out);
        if (code !== 0 || !tps) fail(new Error(`pgbench exited ${code}: ${out}`));
        else done(Number(tps[1]));
      });
    });

  const stateWriter = async (batchMax: number): Promise<number> => {
    const queue = createBatchingQueue({ db: t.pools.stateWriter, batchMax });
    const publishCommitted = createCommittedPublisher({ bus: testBus.bus, topology: testBus.topology, logger });
    const apply = createApplyStateEvent({ db: t.pools.stateWriter, publishCommitted, queue });
    const ctx = { logger };
    let applied = 0;
    let tick = 0;
    const until = performance.now() + SECONDS * 1000;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: CLIENTS }, async (_, i) => {
        while (performance.now() < until) {
          // A distinct percent per tick, so each committed tick has its own event id (as a real job's ticks do).
          const percent = (++tick % 10_000) / 100;
          const event: StateEvent = { v: 1, kind: "progress", pipelineId: PIPELINE, nodeId: nodeId(i), jobId: jobId(i), attempt: 1, at: new Date().toISOString(), percent };
          await apply(event, ctx);
          applied++;
        }
      }),
    );
    return applied / ((performance.now() - started) / 1000);
  };

  for (let round = 1; round <= ROUNDS; round++) {
    for (const mode of MODES) {
      let tps: number;
      if (mode === "pgbench") tps = await pgbench("off");
      else if (mode === "pgbench-durable") tps = await pgbench("on");
      else tps = await stateWriter(mode === "state-writer-batched" ? BATCH_MAX : 1);
      samples.get(mode)!.push(tps);
      console.error(`[bench:state-writer] round ${round} ${mode}: ${tps.toFixed(0)} transitions/s (load ${loadavg().map((x) => x.toFixed(2)).join(" ")})`);
    }
  }
  // Every tick the state-writer answered was applied, none rejected: the counts above are committed transitions.
  const { rows } = await t.admin.query<{ v: string }>(`SELECT sum(state_version)::text AS v FROM video_production_nodes WHERE pipeline_id = $1`, [PIPELINE]);
  console.error(`[bench:state-writer] node versions committed in all: ${rows[0]?.v}`);
} finally {
  await testBus.cleanup().catch(() => {});
  await t.drop().catch(() => {});
  await rm(workDir, { recursive: true, force: true });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const m = Object.fromEntries(MODES.map((mode) => [mode, median(samples.get(mode)!)])) as Record<Mode, number>;
const loadAtEnd = loadavg();
const unbatchedRatio = m["state-writer-unbatched"] / m.pgbench;
const batchedRatio = m["state-writer-batched"] / m.pgbench;
const rows = [
  { what: `pgbench: the same UPDATE, ${CLIENTS} clients, synchronous_commit off (baseline)`, tps: m.pgbench, ratio: 1 },
  { what: `state-writer, STATE_WRITER_BATCH_MAX=1 (a transaction per tick), ${CLIENTS} clients`, tps: m["state-writer-unbatched"], ratio: unbatchedRatio },
  { what: `state-writer, STATE_WRITER_BATCH_MAX=${BATCH_MAX} (group commit), ${CLIENTS} clients`, tps: m["state-writer-batched"], ratio: batchedRatio },
  { what: `reference: pgbench, synchronous_commit on (a WAL flush per UPDATE)`, tps: m["pgbench-durable"], ratio: m["pgbench-durable"] / m.pgbench },
];
console.log(`\nState-writer progress ticks vs pgbench (median of ${ROUNDS} x ${SECONDS} s; load ${loadAtStart.map((x) => x.toFixed(1)).join(" ")} -> ${loadAtEnd.map((x) => x.toFixed(1)).join(" ")})\n`);
console.log("| what | transitions/s | ratio to pgbench |");
console.log("|---|---|---|");
for (const r of rows) console.log(`| ${r.what} | ${r.tps.toFixed(0)} | ${r.ratio.toFixed(2)}x |`);
const verdict = (ok: boolean) => (ok ? "met" : "not met");
console.log(`\nTargets: unbatched >= 0.7x pgbench -> ${verdict(unbatchedRatio >= 0.7)} (${unbatchedRatio.toFixed(2)}x); batched past pgbench -> ${verdict(batchedRatio > 1)} (${batchedRatio.toFixed(2)}x)`);

const out = resolve(import.meta.dirname, "results", "state-writer.json");
await writeFile(
  out,
  JSON.stringify({ at: new Date().toISOString(), nodes: NODES, clients: CLIENTS, seconds: SECONDS, rounds: ROUNDS, batchMax: BATCH_MAX, loadAtStart, loadAtEnd, samples: Object.fromEntries(samples), median: m, unbatchedRatio, batchedRatio }, null, 2) + "\n",
);
console.error(`[bench:state-writer] wrote ${out}`);
process.exit(0);
