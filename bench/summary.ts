/**
 * The last step of `npm run bench`: one markdown table of every benchmark ratio (a)-(f), read from the JSON the
 * six benches just wrote to bench/results/, each ratio against the baseline measured in the same run, with its
 * target and whether it is met. Writes bench/results/summary.json. A bench that did not run (or wrote nothing)
 * shows as "not measured", never as met.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join, resolve } from "node:path";

const dir = resolve(import.meta.dirname, "results");

function read(name: string): any | undefined {
  const file = join(dir, name);
  return existsSync(file) ? JSON.parse(readFileSync(file, "utf8")) : undefined;
}

/** The newest media result (media.bench.ts writes one timestamped file per run). */
function latestMedia(): any | undefined {
  if (!existsSync(dir)) return undefined;
  const files = readdirSync(dir)
    .filter((f) => /^media-.*\.json$/.test(f))
    .sort();
  return files.length ? read(files[files.length - 1]!) : undefined;
}

interface Row {
  bench: string;
  measure: string;
  ours: string;
  baseline: string;
  ratio: string;
  target: string;
  met: boolean | null;
}

const rows: Row[] = [];
const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toLocaleString("en-US", { maximumFractionDigits: digits }) : "n/a");
const x = (n: number) => `${fmt(n, n < 1 ? 3 : 2)}x`;
const missing = (bench: string, what: string) => rows.push({ bench, measure: what, ours: "not measured", baseline: "", ratio: "", target: "", met: null });

// (a) orchestration overhead per node, against BullMQ add -> completed.
const orch = read("orchestration.json");
if (orch?.rows?.length >= 2) {
  const [ours, bull] = orch.rows;
  rows.push({
    bench: "(a) orchestration",
    measure: "overhead per node, p50 ms",
    ours: fmt(ours.p50, 2),
    baseline: `BullMQ ${fmt(bull.p50, 2)}`,
    ratio: x(ours.p50 / bull.p50),
    target: "(none)",
    met: null,
  });
  const r99 = ours.p99 / bull.p99;
  rows.push({
    bench: "(a) orchestration",
    measure: "overhead per node, p99 ms",
    ours: fmt(ours.p99, 2),
    baseline: `BullMQ ${fmt(bull.p99, 2)}`,
    ratio: x(r99),
    target: "<= 3x",
    met: r99 <= 3,
  });
} else missing("(a) orchestration", "overhead per node");

// (b) 1,000-node wide and chain, nodes/s, against a BullMQ flow of the same shape.
const runs = read("runs.json");
if (runs?.rows?.length) {
  for (const r of runs.rows) {
    const ratio = r.nodesPerSecond / r.bullmq.nodesPerSecond;
    rows.push({
      bench: "(b) runs",
      measure: `${r.shape} ${r.mode}, ${r.nodes} nodes, nodes/s`,
      ours: fmt(r.nodesPerSecond, 0),
      baseline: `BullMQ ${fmt(r.bullmq.nodesPerSecond, 0)}`,
      ratio: x(ratio),
      target: r.shape === "wide" ? ">= 0.5x and >= 1,000/s" : ">= 0.5x",
      met: ratio >= 0.5 && (r.shape !== "wide" || r.nodesPerSecond >= 1000),
    });
  }
} else missing("(b) runs", "nodes/s");

// (c) SSE commit -> client latency against clients polling every 2 s, while a 1,000-node wide run goes.
const sse = read("sse.json");
if (sse?.rows?.length) {
  for (const r of sse.rows) {
    const at1000 = r.clients >= 1000;
    rows.push({
      bench: "(c) SSE",
      measure: `${r.clients} clients, p50 ms`,
      ours: fmt(r.sse.p50, 0),
      baseline: `polling ${fmt(r.poll.p50, 0)}`,
      ratio: `${fmt(r.poll.p50 / r.sse.p50, 1)}x better`,
      target: "(none)",
      met: null,
    });
    const better = r.poll.p99 / r.sse.p99;
    rows.push({
      bench: "(c) SSE",
      measure: `${r.clients} clients, p99 ms`,
      ours: fmt(r.sse.p99, 0),
      baseline: `polling ${fmt(r.poll.p99, 0)}`,
      ratio: `${fmt(better, 1)}x better`,
      target: at1000 ? "<= 100 ms and >= 20x" : "(reported)",
      met: at1000 ? r.sse.p99 <= 100 && better >= 20 : null,
    });
  }
} else missing("(c) SSE", "commit -> client latency");

// (d) media core against the bare ffmpeg command on the same files.
const media = latestMedia();
if (media?.results?.length) {
  for (const r of media.results) {
    rows.push({
      bench: "(d) media",
      measure: `${r.name}, median s`,
      ours: fmt(r.medianOurs, 3),
      baseline: `ffmpeg ${fmt(r.medianBare, 3)}`,
      ratio: x(r.ratio),
      target: `<= ${r.target}x`,
      met: r.ratio <= r.target,
    });
  }
} else missing("(d) media", "wall time");

// (e) state-writer progress ticks against pgbench running the identical UPDATE with the same clients.
const sw = read("state-writer.json");
if (sw?.median) {
  const base = sw.median.pgbench;
  const unbatched = sw.median["state-writer-unbatched"];
  const batched = sw.median["state-writer-batched"];
  rows.push({
    bench: "(e) state-writer",
    measure: `progress ticks/s, unbatched, ${sw.clients} clients`,
    ours: fmt(unbatched, 0),
    baseline: `pgbench ${fmt(base, 0)}`,
    ratio: x(unbatched / base),
    target: ">= 0.7x",
    met: unbatched / base >= 0.7,
  });
  rows.push({
    bench: "(e) state-writer",
    measure: `progress ticks/s, batched, ${sw.clients} clients`,
    ours: fmt(batched, 0),
    baseline: `pgbench ${fmt(base, 0)}`,
    ratio: x(batched / base),
    target: "> 1x",
    met: batched / base > 1,
  });
} else missing("(e) state-writer", "transitions/s");

// (f) a 1,000-row batch: wall time against its target, rows/s against a small batch and time per row against one plain
// run of the same template, orchestration CPU per row, shared work executed once, batch SSE traffic per client.
const batches = read("batches.json");
if (batches?.big) {
  const { big, small, plain } = batches;
  rows.push({
    bench: "(f) batch",
    measure: `${big.rows} rows, wall s`,
    ours: fmt(big.wallMs / 1000, 1),
    baseline: "",
    ratio: "",
    target: "< 300 s",
    met: big.wallMs < 300_000,
  });
  rows.push({
    bench: "(f) batch",
    measure: `${big.rows} rows, rows/s`,
    ours: fmt(big.rowsPerSecond, 2),
    baseline: `${small.rows}-row batch ${fmt(small.rowsPerSecond, 2)}`,
    ratio: x(big.rowsPerSecond / small.rowsPerSecond),
    target: "(none)",
    met: null,
  });
  rows.push({
    bench: "(f) batch",
    measure: "wall ms per row",
    ours: fmt(big.msPerRow, 0),
    baseline: `one plain run ${fmt(plain.wallMs, 0)}`,
    ratio: x(big.msPerRow / plain.wallMs),
    target: "(none)",
    met: null,
  });
  rows.push({
    bench: "(f) batch",
    measure: "orchestration CPU ms per row (gateway, scheduler, state-writer)",
    ours: fmt(big.orchestrationCpuMsPerRow, 1),
    baseline: `${small.rows}-row batch ${fmt(small.orchestrationCpuMsPerRow, 1)}`,
    ratio: x(big.orchestrationCpuMsPerRow / small.orchestrationCpuMsPerRow),
    target: "(none)",
    met: null,
  });
  rows.push({
    bench: "(f) batch",
    measure: "shared nodes' executions (intro, outro)",
    ours: `${big.executed.intro}, ${big.executed.outro}`,
    baseline: "",
    ratio: "",
    target: "1 each",
    met: big.executed.intro === 1 && big.executed.outro === 1,
  });
  const sseWorst = Math.max(...big.sse.map((c: { bytesPerMinute: number }) => c.bytesPerMinute));
  rows.push({
    bench: "(f) batch",
    measure: `SSE bytes per client per minute, ${big.sse.length} clients`,
    ours: fmt(sseWorst, 0),
    baseline: "",
    ratio: "",
    target: "< 1 MB",
    met: sseWorst < 1_000_000,
  });
} else missing("(f) batch", "1,000-row batch");

const verdict = (m: boolean | null) => (m === null ? "" : m ? "met" : "**not met**");
const at = new Date().toISOString();
const load = loadavg()
  .map((l) => l.toFixed(2))
  .join(" ");
console.log(`\n## Benchmarks, every ratio (${at}; ${cpus().length} cores, Node ${process.versions.node}; load now ${load})\n`);
console.log("| bench | measure | ours | baseline (same run) | ratio | target | verdict |\n|---|---|---|---|---|---|---|");
for (const r of rows) console.log(`| ${r.bench} | ${r.measure} | ${r.ours} | ${r.baseline} | ${r.ratio} | ${r.target} | ${verdict(r.met)} |`);
const targets = rows.filter((r) => r.met !== null);
console.log(`\n${targets.filter((r) => r.met).length} of ${targets.length} targets met.`);
writeFileSync(join(dir, "summary.json"), JSON.stringify({ at, load, rows }, null, 2));
