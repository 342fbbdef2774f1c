/**
 * The soak. `npm run soak`; SOAK_MINUTES (default 10) and SOAK_NODES (default 5,000).
 *
 * Load. Runs of 20-node pipelines are submitted at a steady rate over the whole soak (SOAK_NODES / 20 runs, one
 * every SOAK_MINUTES / runs), each a fresh pipeline imported in one request and run with `{ force: true }` (force
 * bypasses the content-addressed cache, which would otherwise complete identical nodes without work). Four runs in
 * six are 20 inline text assets (milliseconds each); one in six uploads two 1 s clips and merges them (real ffmpeg
 * work, a dependency the run plan dispatches after its inputs) beside 17 texts; one in six has two HeyGen talking
 * heads on the fake HeyGen (paid provider jobs) beside 18 texts. A run refused with 503 (an outage) is replaced by
 * a new pipeline, so the accepted node count stays near SOAK_NODES.
 *
 * Faults. Every 20-60 s (uniform; SOAK_FAULT_GAP_S="lo-hi" changes it) one of faults 1-4, drawn from a shuffled
 * bag of the four so that each kind comes once in every four draws (random order and timing, none starved):
 *   1. SIGKILL of an executor (the first replica of executor-ffmpeg or executor-ai, preferably while it holds work),
 *      restarted with its own WORK_ROOT;
 *   2. SIGSTOP of the executor replica holding the most work, until the other replica of its type took one of its
 *      jobs over (or 4 ack waits), never less than its ack wait, then SIGCONT (its late results must be rejected);
 *   3. nats-server SIGKILLed, restarted 3-6 s later (JetStream's file store survives);
 *   4. PostgreSQL stopped with `pg_ctl -m immediate` (a crash), started 10 s later.
 * Two replicas of each executor; the second replica of each is never killed, so it lives through the whole soak
 * beside the gateway, scheduler and state-writer.
 *
 * At the end (after a drain: every accepted run finished):
 * - zero lost: every node of every accepted run (200/202) is completed by that run (metadata.runId);
 * - zero duplicated: exactly one committed completion per node (state-writer "state committed" completed/applied,
 *   logged at commit, before the event's publish, so a publish lost to a NATS outage does not hide it)
 *   and exactly one completed event per node on VP_EVENTS (read from JetStream directly); HeyGen created exactly
 *   one job per accepted talking head, each used by exactly one node;
 * - refused submissions (503 with a reason) left nothing behind: no run recorded, every node pending, no job id;
 * - every answer was 200/202/503 (a 500 or a dropped connection during an outage is a failure);
 * - no process crashed: the only process exits are the SIGKILLs of fault 1; no ffmpeg outlives its executor;
 * - nothing left in flight: the work-queue streams (commands, jobs, state facts) are empty.
 *
 * Memory. VmRSS of every service process (replicas and restarted executors included; a restart starts a new
 * series) is read from /proc/<pid>/status every 5 s and printed as a table, one row per minute (per 20 s on soaks
 * shorter than 5 minutes), MB, the median of the samples in that row; `*` marks a row in which a new process of the
 * slot started. Criterion, for every process that lived through the whole soak: the first third is warm-up (the
 * start-up's transpiling and module loading is released, V8 sizes its heap until GC settles, pools fill: RSS
 * typically falls from ~190 MB to ~130-175 MB there); the median RSS of the last third must be within 1.25x the
 * median of the middle third. Medians, because a single sample can land just before a major GC. What it catches:
 * growth with the work done of more than a quarter of the process's footprint per third of the soak (~40 MB per
 * ~1,700 nodes for a ~150 MB process, ~20 KB retained per node); a slower leak is not proven absent, which is why
 * the table and the post-warm-up slope (MB/min, least squares) are printed too.
 *
 * The narrowest paid-create window (an executor frozen with its "creating" record in flight while another replica
 * takes the node over) is driven on purpose by paid-create-freeze.test.ts.
 */
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus, replayEvents } from "@vp/bus";
import { NodeChanged, PIPELINE_DOCUMENT_FORMAT, PIPELINE_DOCUMENT_VERSION } from "@vp/contracts";
import { makeTestClip } from "@vp/media";
import { createLogger } from "@vp/telemetry";
import { startFakeProviders, type FakeProviders, type ServiceName, type ServiceProcess } from "@vp/testkit";
import { ffmpegProcessesUnder } from "../e2e/helpers";
import { startFaultInfra, type FaultInfra, type FaultStack } from "../faults/harness";

const MINUTES = Number(process.env.SOAK_MINUTES ?? 10);
const NODES = Number(process.env.SOAK_NODES ?? 5000);
const DURATION_MS = MINUTES * 60_000;
const NODES_PER_RUN = 20;
const ACK_WAIT_MS = 5000;
const SAMPLE_MS = 5000;
/** Seconds between faults, uniform in [lo, hi]; SOAK_FAULT_GAP_S="lo-hi" makes a denser soak to hunt for defects. */
const FAULT_GAP_MS = (process.env.SOAK_FAULT_GAP_S ?? "20-60").split("-").map((x) => Number(x) * 1000) as [number, number];
const NATS_OUTAGE_MS: [number, number] = [3000, 6000];
const PG_OUTAGE_MS = 10_000;
const FLAT_RATIO = 1.25;
const DRAIN_TIMEOUT_MS = 8 * 60_000;
const SUBMITTERS = 2;
const HEYGEN = { provider: "heygen", avatarId: "Daisy-inskirt-20220818", voiceId: "2d5b0e6cf36f460aa7fc47e3eee4ba54" };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const between = ([lo, hi]: [number, number]) => lo + Math.random() * (hi - lo);
const key = (p: unknown, n: unknown) => `${String(p)}/${String(n)}`;

let infra: FaultInfra;
let fx: FaultStack;
let fakes: FakeProviders;
let clip: Uint8Array;

const SLOTS = [
  { id: "ffmpeg-1", name: "executor-ffmpeg", killable: true, sibling: "ffmpeg-2" },
  { id: "ffmpeg-2", name: "executor-ffmpeg", killable: false, sibling: "ffmpeg-1" },
  { id: "ai-1", name: "executor-ai", killable: true, sibling: "ai-2" },
  { id: "ai-2", name: "executor-ai", killable: false, sibling: "ai-1" },
] as const satisfies ReadonlyArray<{ id: string; name: ServiceName; killable: boolean; sibling: string }>;
type Slot = (typeof SLOTS)[number];
const current = new Map<string, ServiceProcess>();
/** pids this test SIGKILLed on purpose (fault 1); any other exit is a crash. */
const killedPids = new Set<number>();
const workRootOf = (slot: Slot) => join(fx.scratch, `work-${slot.id}`);

beforeAll(async () => {
  fakes = await startFakeProviders({ pollsUntilDone: 2 });
  infra = await startFaultInfra("soak");
  fx = await infra.stack({
    jobAckWaitMs: ACK_WAIT_MS,
    services: ["state-writer", "scheduler", "gateway"],
    env: {
      ...fakes.env,
      LOG_LEVEL: "info",
      JOB_CONCURRENCY: "8",
      TALKING_HEAD_CONCURRENCY: "6",
      // Three ack waits, as the default (90 s for the default 30 s ack wait).
      STALLED_AFTER_MS: String(3 * ACK_WAIT_MS),
      RECONCILE_INTERVAL_MS: "2000",
      PROVIDER_POLL_INTERVAL_MS: "300",
      PROVIDER_HTTP_TIMEOUT_MS: "2000",
    },
  });
  for (const slot of SLOTS) current.set(slot.id, await fx.replica(slot.name, { WORK_ROOT: workRootOf(slot) }));
  const path = join(infra.dir, "clip.mp4");
  await makeTestClip({ path, durationSeconds: 1, width: 160, height: 120, fps: 10, audio: true });
  clip = new Uint8Array(await readFile(path));
}, 600_000);

/** Every service process's log lines, one NDJSON file per process, kept after the soak (its own directory is removed). */
const LOG_DIR = join(process.cwd(), ".artifacts", "soak-logs");
async function keepLogs(): Promise<void> {
  await rm(LOG_DIR, { recursive: true, force: true });
  await mkdir(LOG_DIR, { recursive: true });
  const names: ServiceName[] = ["gateway", "scheduler", "state-writer", "executor-ffmpeg", "executor-ai"];
  for (const name of names)
    for (const [i, p] of (fx?.processesOf(name) ?? []).entries())
      await writeFile(join(LOG_DIR, `${name}-${i + 1}-${p.pid}.ndjson`), p.logs.map((l) => JSON.stringify(l)).join("\n"));
  console.log(`soak service logs: ${LOG_DIR}`);
}

afterAll(async () => {
  await keepLogs().catch((error: unknown) => console.log(`soak service logs not kept: ${String(error)}`));
  // A failure half-way may leave an executor stopped; a stopped process cannot handle SIGTERM.
  for (const p of [...(fx?.processesOf("executor-ai") ?? []), ...(fx?.processesOf("executor-ffmpeg") ?? [])]) p.kill("SIGCONT");
  await infra?.destroy();
  await fakes?.close();
});

// ---------------------------------------------------------------------------------------------------------------
// Load

type Kind = "text" | "media" | "paid";
const kindOf = (i: number): Kind => (i % 6 === 2 ? "media" : i % 6 === 5 ? "paid" : "text");

function documentOf(i: number, kind: Kind) {
  const nodes: Array<Record<string, unknown>> = [];
  if (kind === "media") {
    for (const id of ["a", "b"]) nodes.push({ id, title: `clip ${id}`, type: "asset", asset: { type: "video" } });
    nodes.push({ id: "m", title: "merge", type: "merge-videos", inputs: { segments: ["a", "b"] }, config: { reencode: "always" } });
  }
  if (kind === "paid") {
    for (const id of ["h1", "h2"])
      nodes.push({ id, title: `head ${id}`, type: "talking-head", config: { ...HEYGEN, script: `Soak run ${i}, presenter ${id}.` } });
  }
  for (let n = 0; nodes.length < NODES_PER_RUN; n++)
    nodes.push({ id: `t${n}`, title: `text ${n}`, type: "asset", asset: { type: "text", content: `soak ${i} text ${n}` } });
  return { format: PIPELINE_DOCUMENT_FORMAT, version: PIPELINE_DOCUMENT_VERSION, title: `soak ${i} (${kind})`, nodes };
}

interface Submission {
  index: number;
  kind: Kind;
  pipelineId: string;
  nodeIds: string[];
  heads: string[];
  status: number;
  body: any;
  /** Seconds since the soak started. */
  at: number;
  /** The fault under way when the request was sent, if any. */
  during: string | null;
}

interface Unexpected {
  what: string;
  status: number;
  body: unknown;
  at: number;
  during: string | null;
}

// ---------------------------------------------------------------------------------------------------------------
// Faults

interface FaultRecord {
  kind: 1 | 2 | 3 | 4;
  at: number;
  ms: number;
  detail: string;
}
const FAULT_NAMES = { 1: "executor SIGKILL", 2: "executor SIGSTOP/SIGCONT", 3: "nats-server kill+restart", 4: "PostgreSQL stop+start" } as const;

/** Jobs (jobId -> attempt) a process started and has not finished, from its log. */
function openJobs(p: ServiceProcess): Map<string, number> {
  const open = new Map<string, number>();
  for (const l of p.logs) {
    if (typeof l.jobId !== "string") continue;
    if (l.msg === "work started") open.set(l.jobId, Number(l.attempt));
    else if (
      ["work completed", "work cancelled", "attempt superseded; stopping without a result", "handler failed; will retry", "giving up on message"].includes(
        String(l.msg),
      )
    ) {
      if (open.get(l.jobId) === Number(l.attempt)) open.delete(l.jobId);
    }
  }
  return open;
}

/** Waits up to `ms` for one of `slots` to hold work; the busiest then, or a random one if none did. */
async function busiest(slots: readonly Slot[], ms: number): Promise<{ slot: Slot; held: Map<string, number> }> {
  const deadline = Date.now() + ms;
  for (;;) {
    const loads = slots.map((slot) => ({ slot, held: openJobs(current.get(slot.id)!) })).sort((a, b) => b.held.size - a.held.size);
    if (loads[0]!.held.size > 0 || Date.now() > deadline) return loads[0]!.held.size > 0 ? loads[0]! : loads[Math.floor(Math.random() * loads.length)]!;
    await sleep(50);
  }
}

async function killExecutor(): Promise<string> {
  const { slot, held } = await busiest(
    SLOTS.filter((s) => s.killable),
    5000,
  );
  const victim = current.get(slot.id)!;
  killedPids.add(victim.pid);
  victim.kill("SIGKILL");
  const { signal } = await victim.exited;
  // Before the restart reaps anything: the kernel (setpriv --pdeathsig) ends the victim's ffmpeg.
  const deadline = Date.now() + 3000;
  let strays = await ffmpegProcessesUnder(workRootOf(slot));
  while (strays.length > 0 && Date.now() < deadline) {
    await sleep(100);
    strays = await ffmpegProcessesUnder(workRootOf(slot));
  }
  expect(signal).toBe("SIGKILL");
  expect(strays, `ffmpeg outliving ${slot.id} (pid ${victim.pid})`).toEqual([]);
  const restarted = await fx.replica(slot.name, { WORK_ROOT: workRootOf(slot) });
  current.set(slot.id, restarted);
  return `${slot.id} pid ${victim.pid} holding ${held.size} job(s) -> pid ${restarted.pid}`;
}

async function freezeExecutor(): Promise<string> {
  const { slot, held } = await busiest(SLOTS, 5000);
  const victim = current.get(slot.id)!;
  const sibling = current.get(slot.sibling)!;
  const frozenAt = Date.now();
  victim.kill("SIGSTOP");
  const takenOver = () =>
    [...held].filter(([jobId, attempt]) => sibling.logs.some((l) => l.msg === "work started" && l.jobId === jobId && Number(l.attempt) > attempt)).length;
  // Past its ack wait in any case; until the sibling took one of its jobs over, at most 4 ack waits.
  while (Date.now() - frozenAt < ACK_WAIT_MS + 1000 || (held.size > 0 && takenOver() === 0 && Date.now() - frozenAt < 4 * ACK_WAIT_MS)) await sleep(100);
  const taken = takenOver();
  victim.kill("SIGCONT");
  return `${slot.id} pid ${victim.pid} frozen ${((Date.now() - frozenAt) / 1000).toFixed(1)} s holding ${held.size} job(s), ${taken} taken over by ${slot.sibling}`;
}

/** When nats-server was SIGKILLed (ms since the epoch): leftover messages are compared with these. */
const natsKills: number[] = [];

async function restartNats(): Promise<string> {
  const outage = between(NATS_OUTAGE_MS);
  natsKills.push(Date.now());
  await infra.nats.kill("SIGKILL");
  await sleep(outage);
  await infra.nats.start();
  return `down ${(outage / 1000).toFixed(1)} s`;
}

/**
 * Evidence for a work-queue stream that did not drain: each consumer's delivered and ack floor, and every message
 * left (sequence, subject, time, job) with whether it lies at or below its consumer's ack floor (acknowledged as
 * far as the consumer knows, yet still stored) and how long after the nearest nats-server kill it was stored.
 */
async function describeLeftovers(bus: Awaited<ReturnType<typeof connectBus>>, streams: string[], kills: number[]): Promise<string> {
  const lines: string[] = ["[soak] messages left in the work-queue streams:"];
  for (const stream of streams) {
    const info = await bus.jsm.streams.info(stream);
    if (info.state.messages === 0) continue;
    const consumers = [];
    for await (const c of bus.jsm.consumers.list(stream)) consumers.push(c);
    for (const c of consumers) {
      lines.push(
        `  ${stream}/${c.name} filter ${c.config.filter_subject ?? "-"}: delivered stream seq ${c.delivered.stream_seq}, ack floor ${c.ack_floor.stream_seq}, pending ${c.num_pending}, ack pending ${c.num_ack_pending}, redelivered ${c.num_redelivered}`,
      );
    }
    let shown = 0;
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && shown < 60; seq++) {
      const m = await bus.jsm.streams.getMessage(stream, { seq }).catch(() => null);
      if (!m) continue;
      shown++;
      const at = m.time.getTime();
      const owner = consumers.find((c) => c.config.filter_subject === m.subject || (c.config.filter_subject ?? "").endsWith(">"));
      const belowFloor = owner ? seq <= owner.ack_floor.stream_seq : undefined;
      const sinceKill = kills
        .filter((k) => k <= at)
        .map((k) => at - k)
        .sort((a, b) => a - b)[0];
      const untilKill = kills
        .filter((k) => k > at)
        .map((k) => k - at)
        .sort((a, b) => a - b)[0];
      let job = "";
      try {
        const body = m.json<{ jobId?: string; pipelineId?: string; nodeId?: string }>();
        job = `job ${body.jobId ?? "?"} node ${body.pipelineId ?? "?"}/${body.nodeId ?? "?"}`;
      } catch {
        job = `${m.data.length} bytes`;
      }
      lines.push(
        `  seq ${seq} ${m.subject} ${m.time.toISOString()} ${job} msg-id ${m.header?.get("Nats-Msg-Id") ?? "-"}: ` +
          `${belowFloor === undefined ? "no consumer" : belowFloor ? "at/below ack floor" : "above ack floor"}; ` +
          `${untilKill !== undefined ? `${untilKill} ms before a nats-server kill` : "after the last kill"}${sinceKill !== undefined ? `, ${sinceKill} ms after one` : ""}`,
      );
    }
  }
  return lines.join("\n");
}

async function bouncePostgres(): Promise<string> {
  await infra.postgres.stop("immediate");
  await sleep(PG_OUTAGE_MS);
  await infra.postgres.start();
  return `down ${PG_OUTAGE_MS / 1000} s (immediate stop)`;
}

// ---------------------------------------------------------------------------------------------------------------
// Memory

interface Series {
  slot: string;
  pid: number;
  generation: number;
  samples: Array<{ t: number; mb: number }>;
}

async function rssMb(pid: number): Promise<number | undefined> {
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  return m ? Number(m[1]) / 1024 : undefined;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

/** Least-squares slope of the samples, MB per minute. */
function slopeMbPerMin(samples: Array<{ t: number; mb: number }>): number {
  const n = samples.length;
  if (n < 2) return 0;
  const mt = samples.reduce((s, x) => s + x.t, 0) / n;
  const mm = samples.reduce((s, x) => s + x.mb, 0) / n;
  const num = samples.reduce((s, x) => s + (x.t - mt) * (x.mb - mm), 0);
  const den = samples.reduce((s, x) => s + (x.t - mt) ** 2, 0);
  return den ? (num / den) * 60_000 : 0;
}

// ---------------------------------------------------------------------------------------------------------------

async function query<R extends pg.QueryResultRow>(sql: string, values: unknown[] = []): Promise<R[]> {
  const c = new pg.Client({ connectionString: fx.adminUrl });
  await c.connect();
  try {
    return (await c.query<R>(sql, values)).rows;
  } finally {
    await c.end().catch(() => undefined);
  }
}

describe(`a ${MINUTES}-minute soak of ${NODES} nodes with faults 1-4 at random intervals`, () => {
  it("zero lost, zero duplicated, no paid job created twice, refused runs leave nothing behind, RSS flat after warm-up", async () => {
    const { api, stack } = fx;
    const soakStart = Date.now();
    const soakEnd = soakStart + DURATION_MS;
    const since = () => Math.round((Date.now() - soakStart) / 100) / 10;
    /** The fault under way, or for 15 s after one ended "after <fault>" (clients reconnect within seconds). */
    let faultNow: string | null = null;
    let lastFault: { name: string; endedAt: number } | undefined;
    const duringFault = () => faultNow ?? (lastFault && Date.now() - lastFault.endedAt < 15_000 ? `after ${lastFault.name}` : null);

    // RSS sampler: every service process alive at the tick, keyed by pid.
    const series = new Map<number, Series>();
    const generations = new Map<string, number>();
    const sampled = () => [
      ...(["gateway", "scheduler", "state-writer"] as const).map((name) => ({ slot: name as string, p: stack.services.get(name)! })),
      ...SLOTS.map((slot) => ({ slot: slot.id as string, p: current.get(slot.id)! })),
    ];
    const sample = async () => {
      const t = Date.now() - soakStart;
      for (const { slot, p } of sampled()) {
        if (p.proc.exitCode !== null || p.proc.signalCode !== null) continue;
        const mb = await rssMb(p.pid);
        if (mb === undefined) continue;
        let s = series.get(p.pid);
        if (!s) {
          const generation = (generations.get(slot) ?? 0) + 1;
          generations.set(slot, generation);
          s = { slot, pid: p.pid, generation, samples: [] };
          series.set(p.pid, s);
        }
        s.samples.push({ t, mb });
      }
    };
    await sample();
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        await sleep(SAMPLE_MS - ((Date.now() - soakStart) % SAMPLE_MS));
        if (sampling) await sample();
      }
    })();

    // Fault loop.
    const faults: FaultRecord[] = [];
    const bag: Array<FaultRecord["kind"]> = [];
    let faultError: unknown;
    const faultLoop = (async () => {
      for (;;) {
        await sleep(Math.min(between(FAULT_GAP_MS), Math.max(0, soakEnd - Date.now())));
        if (Date.now() >= soakEnd) return;
        if (!bag.length)
          bag.push(
            ...([1, 2, 3, 4] as const)
              .map((k) => ({ k, r: Math.random() }))
              .sort((a, b) => a.r - b.r)
              .map((x) => x.k),
          );
        const kind = bag.pop()!;
        const at = since();
        const t0 = Date.now();
        faultNow = FAULT_NAMES[kind];
        try {
          const detail = kind === 1 ? await killExecutor() : kind === 2 ? await freezeExecutor() : kind === 3 ? await restartNats() : await bouncePostgres();
          faults.push({ kind, at, ms: Date.now() - t0, detail });
          console.log(`[soak ${at.toFixed(0)} s] fault ${kind} (${FAULT_NAMES[kind]}): ${detail}`);
        } finally {
          faultNow = null;
          lastFault = { name: FAULT_NAMES[kind], endedAt: Date.now() };
        }
      }
    })().catch((error: unknown) => {
      faultError = error;
    });

    // Submitters: run i is due at soakStart + i * interval; a refused run is owed and replaced by a new pipeline.
    const planned = Math.ceil(NODES / NODES_PER_RUN);
    const interval = DURATION_MS / planned;
    const submissions: Submission[] = [];
    const unexpected: Unexpected[] = [];
    let released = 0;
    let owed = 0;
    let made = 0;
    let lastReport = 0;

    /** A request that must eventually succeed (structure, uploads): retried through outages (503). */
    const retrying = async (what: string, method: string, path: string, body?: unknown, headers?: Record<string, string>) => {
      for (;;) {
        const sentDuring = duringFault();
        const res = await api.call(method, path, body, headers).catch((error: Error) => ({ status: 0, body: String(error), headers: new Headers() }));
        if (res.status >= 200 && res.status < 300) return res.body;
        if (res.status !== 503) unexpected.push({ what, status: res.status, body: res.body, at: since(), during: sentDuring });
        await sleep(500);
      }
    };

    const submitOne = async (index: number) => {
      const kind = kindOf(index);
      const doc = documentOf(index, kind);
      const { pipeline } = await retrying(`import ${index}`, "POST", "/pipelines/import", doc);
      const P = pipeline.id as string;
      if (kind === "media")
        for (const id of ["a", "b"]) await retrying(`upload ${P}/${id}`, "PUT", `/pipelines/${P}/nodes/${id}/asset`, clip, { "content-type": "video/mp4" });
      const sentDuring = duringFault();
      const at = since();
      const res = await api
        .call("POST", `/pipelines/${P}/execute`, { force: true })
        .catch((error: Error) => ({ status: 0, body: String(error), headers: new Headers() }));
      const heads = kind === "paid" ? ["h1", "h2"] : [];
      submissions.push({
        index,
        kind,
        pipelineId: P,
        nodeIds: doc.nodes.map((n) => String(n.id)),
        heads,
        status: res.status,
        body: res.body,
        at,
        during: sentDuring,
      });
      if (res.status === 503) {
        owed++;
        await sleep(1000);
      } else if (res.status !== 200 && res.status !== 202) {
        unexpected.push({ what: `execute ${P}`, status: res.status, body: res.body, at, during: sentDuring });
      }
    };

    const submitter = async () => {
      while (Date.now() < soakEnd) {
        const scheduled = Math.min(planned, Math.floor((Date.now() - soakStart) / interval) + 1);
        if (released < scheduled) released++;
        else if (owed > 0) owed--;
        else {
          await sleep(50);
          continue;
        }
        await submitOne(made++);
        if (Date.now() - lastReport > 60_000) {
          lastReport = Date.now();
          const ok = submissions.filter((s) => s.status === 200 || s.status === 202).length;
          console.log(
            `[soak ${since().toFixed(0)} s] runs submitted ${submissions.length} (accepted ${ok}, refused ${submissions.length - ok}), due ${scheduled}`,
          );
        }
      }
    };
    await Promise.all(Array.from({ length: SUBMITTERS }, submitter));
    const submittedAt = since();
    await faultLoop;
    const faultsDoneAt = since();

    // Drain: every accepted run finishes.
    const accepted = submissions.filter((s) => s.status === 200 || s.status === 202);
    const refused = submissions.filter((s) => s.status === 503);
    const runOf = new Map(accepted.map((s) => [s.pipelineId, String(s.body.run_id)]));
    const drainDeadline = Date.now() + DRAIN_TIMEOUT_MS;
    let drainError: Error | undefined;
    let runs: Array<{ id: string; pipeline_id: string; status: string; metadata: Record<string, unknown> }> = [];
    for (;;) {
      runs = await query<(typeof runs)[number]>("select id, pipeline_id, status, metadata from video_production_runs").catch(() => runs);
      const finished = runs.filter((r) => runOf.get(r.pipeline_id) === r.id && r.status !== "running").length;
      if (finished === accepted.length) break;
      if (Date.now() > drainDeadline) {
        const stuck = await query(
          "select status, count(*)::int as n from video_production_nodes where pipeline_id = any($1) and status <> 'completed' group by status",
          [[...runOf.keys()]],
        ).catch(String);
        drainError = new Error(
          `${accepted.length - finished} of ${accepted.length} accepted runs unfinished ${DRAIN_TIMEOUT_MS / 1000} s after the soak; nodes not completed: ${JSON.stringify(stuck)}`,
        );
        break;
      }
      await sleep(1000);
    }
    const drainedAt = since();
    // Anything wrongly stored for a refused run gets a chance to run before we look.
    await sleep(3000);
    sampling = false;
    await sampler;

    // ---- Memory: the RSS curve and the verdicts, printed before any assertion (a failing soak still shows its curve).
    const columns = ["gateway", "scheduler", "state-writer", ...SLOTS.map((s) => s.id as string)];
    const allSeries = [...series.values()];
    const bucketMs = DURATION_MS >= 5 * 60_000 ? 60_000 : 20_000;
    const lastT = Math.max(...allSeries.flatMap((s) => s.samples.map((x) => x.t)));
    const lines: string[] = [];
    const pad = (s: string, n: number) => s.padStart(n);
    lines.push(["t (min)", ...columns].map((c, i) => pad(c, i ? 13 : 9)).join(""));
    for (let b = 0; b * bucketMs <= lastT; b++) {
      const lo = b * bucketMs;
      const hi = lo + bucketMs;
      const cells = columns.map((col) => {
        const inBucket = allSeries.filter((s) => s.slot === col).flatMap((s) => s.samples.filter((x) => x.t >= lo && x.t < hi));
        if (!inBucket.length) return "-";
        const born = allSeries.some((s) => s.slot === col && s.generation > 1 && s.samples[0]!.t >= lo && s.samples[0]!.t < hi);
        return `${median(inBucket.map((x) => x.mb)).toFixed(0)}${born ? "*" : ""}`;
      });
      const label = `${(lo / 60_000).toFixed(lo % 60_000 ? 2 : 0)}${lo >= DURATION_MS ? " d" : ""}`;
      lines.push([label, ...cells].map((c, i) => pad(c, i ? 13 : 9)).join(""));
    }
    console.log(`[soak] RSS (MB, median per ${bucketMs / 1000} s; * = a new process of the slot started; d = drain after the soak)\n${lines.join("\n")}`);

    const third = DURATION_MS / 3;
    const verdicts: Array<{ process: string; pid: number; warm: number; middle: number; last: number; ratio: number; slope: number; flat: boolean }> = [];
    for (const s of allSeries) {
      const label = `${s.slot}${s.generation > 1 ? `#${s.generation}` : ""}`;
      const soaked = s.samples.filter((x) => x.t <= DURATION_MS);
      const wholeSoak = s.samples[0]!.t <= SAMPLE_MS && soaked.length > 0 && soaked[soaked.length - 1]!.t >= DURATION_MS - 2 * SAMPLE_MS;
      const part = (lo: number, hi: number) => soaked.filter((x) => x.t >= lo && x.t < hi).map((x) => x.mb);
      if (!wholeSoak) {
        const mbs = s.samples.map((x) => x.mb);
        console.log(
          `[soak] ${label} (pid ${s.pid}) lived ${(s.samples[0]!.t / 1000).toFixed(0)}-${(s.samples[s.samples.length - 1]!.t / 1000).toFixed(0)} s: RSS ${Math.min(...mbs).toFixed(0)}-${Math.max(...mbs).toFixed(0)} MB (not judged: not alive for the whole soak)`,
        );
        continue;
      }
      const warm = median(part(0, third));
      const middle = median(part(third, 2 * third));
      const last = median(part(2 * third, DURATION_MS + 1));
      const ratio = last / middle;
      verdicts.push({
        process: label,
        pid: s.pid,
        warm,
        middle,
        last,
        ratio,
        slope: slopeMbPerMin(soaked.filter((x) => x.t >= third)),
        flat: ratio <= FLAT_RATIO,
      });
    }
    console.log(
      `[soak] flat after warm-up (median of the last third <= ${FLAT_RATIO}x the middle third's):\n` +
        verdicts
          .map(
            (v) =>
              `  ${v.process.padEnd(13)} warm-up ${v.warm.toFixed(0)} MB, middle ${v.middle.toFixed(0)} MB, last ${v.last.toFixed(0)} MB: x${v.ratio.toFixed(3)}, slope after warm-up ${v.slope >= 0 ? "+" : ""}${v.slope.toFixed(2)} MB/min ${v.flat ? "flat" : "GROWING"}`,
          )
          .join("\n"),
    );

    // ---- Report: submissions and faults.
    const acceptedNodes = accepted.reduce((n, s) => n + s.nodeIds.length, 0);
    const byKind = (k: Kind) => accepted.filter((s) => s.kind === k).length;
    console.log(
      `[soak] ${MINUTES} min (submitting until ${submittedAt} s, faults until ${faultsDoneAt} s, drained at ${drainedAt} s): runs accepted ${accepted.length} ` +
        `(${byKind("text")} text, ${byKind("media")} media, ${byKind("paid")} paid; ${accepted.filter((s) => s.status === 202).length} as 202) = ${acceptedNodes} nodes; ` +
        `refused ${refused.length} (${refused.reduce((n, s) => n + s.nodeIds.length, 0)} nodes; during ${JSON.stringify(Object.fromEntries([...new Set(refused.map((s) => s.during ?? "no fault"))].map((d) => [d, refused.filter((s) => (s.during ?? "no fault") === d).length])))})`,
    );
    const faultCounts = Object.fromEntries(([1, 2, 3, 4] as const).map((k) => [`${k} ${FAULT_NAMES[k]}`, faults.filter((f) => f.kind === k).length]));
    console.log(`[soak] faults ${faults.length}: ${JSON.stringify(faultCounts)}`);
    if (faultError) throw faultError;
    if (drainError) throw drainError;

    // ---- Every answer was 200/202 or a 503 with a reason.
    expect(unexpected, JSON.stringify(unexpected.slice(0, 10))).toEqual([]);
    for (const s of refused) expect(String(s.body?.error), JSON.stringify(s.body)).toMatch(/bus|NATS|database/i);
    expect(acceptedNodes, "the soak submitted its load").toBeGreaterThan(NODES / 2);

    // ---- Zero lost: every node of every accepted run is completed by that run.
    const rows = await query<{ pipeline_id: string; id: string; status: string; metadata: Record<string, any> | null; output: Record<string, any> | null }>(
      "select pipeline_id, id, status, metadata, output from video_production_nodes where pipeline_id = any($1)",
      [submissions.map((s) => s.pipelineId)],
    );
    const rowOf = new Map(rows.map((r) => [key(r.pipeline_id, r.id), r]));
    const runById = new Map(runs.map((r) => [r.id, r]));
    const notCompletedRuns = accepted.filter((s) => runById.get(runOf.get(s.pipelineId)!)?.status !== "completed");
    // Evidence for the report: each node of those runs that did not complete, with its reason and the services' lines about it.
    for (const s of notCompletedRuns.slice(0, 5)) {
      for (const row of rows.filter((r) => r.pipeline_id === s.pipelineId && r.status !== "completed")) {
        const lines = (["scheduler", "state-writer", "executor-ai", "executor-ffmpeg"] as const).flatMap((name) =>
          fx
            .logsOf(name)
            .filter((l) => l.pipelineId === row.pipeline_id && l.nodeId === row.id)
            .map((l) => `${name}: ${l.msg}${l.err ? ` ${JSON.stringify(l.err).slice(0, 300)}` : ""}`),
        );
        console.log(
          `[soak] not completed: ${row.pipeline_id}/${row.id} ${row.status}: ${JSON.stringify(row.metadata?.error ?? null)}\n  ${lines.slice(-40).join("\n  ")}`,
        );
      }
    }
    expect(
      notCompletedRuns.map((s) => ({ pipelineId: s.pipelineId, run: runById.get(runOf.get(s.pipelineId)!) })).slice(0, 5),
      `${notCompletedRuns.length} accepted runs not completed`,
    ).toEqual([]);
    const lost: Array<{ node: string; status?: string; runId?: unknown; error?: unknown }> = [];
    const providerJobs: string[] = [];
    let retried = 0;
    for (const s of accepted) {
      for (const n of s.nodeIds) {
        const row = rowOf.get(key(s.pipelineId, n));
        if (!row || row.status !== "completed" || row.metadata?.runId !== runOf.get(s.pipelineId) || !row.output?.s3Key) {
          lost.push({ node: key(s.pipelineId, n), status: row?.status, runId: row?.metadata?.runId, error: row?.metadata?.error });
          continue;
        }
        if (s.heads.includes(n)) providerJobs.push(String(row.output.providerJobId));
        if (Number(row.metadata?.retries ?? 0) > 0) retried++;
      }
    }
    expect(lost.slice(0, 10), `${lost.length} accepted nodes lost`).toEqual([]);

    // ---- Zero duplicated: one committed completion per node, in the state-writer's commits and on VP_EVENTS.
    const expected = accepted.flatMap((s) => s.nodeIds.map((n) => key(s.pipelineId, n))).sort();
    const commits = new Map<string, number>();
    for (const l of fx.logsOf("state-writer")) {
      if (l.msg === "state committed" && l.status === "completed" && l.outcome === "applied")
        commits.set(key(l.pipelineId, l.nodeId), (commits.get(key(l.pipelineId, l.nodeId)) ?? 0) + 1);
    }
    const committedTwice = [...commits].filter(([, n]) => n !== 1);
    expect(committedTwice.slice(0, 10), `${committedTwice.length} nodes committed completed more than once`).toEqual([]);
    expect([...commits.keys()].sort()).toEqual(expected);

    const verifier = await connectBus({
      servers: infra.nats.url,
      name: "soak-verify",
      logger: createLogger({ service: "soak", level: "warn" }),
      ...infra.nats.admin,
    });
    const published = new Map<string, number>();
    try {
      const stream = fx.topology.streams.events.name;
      const lastSeq = (await verifier.jsm.streams.info(stream)).state.last_seq;
      let seen = 0;
      const replay = replayEvents(verifier, {
        stream,
        subject: fx.topology.subjects.events("*"),
        startSeq: 1,
        schema: NodeChanged,
        onEvent: (seq, event) => {
          seen = seq;
          if (event.status === "completed") published.set(key(event.pipelineId, event.nodeId), (published.get(key(event.pipelineId, event.nodeId)) ?? 0) + 1);
        },
      });
      const deadline = Date.now() + 120_000;
      while (seen < lastSeq && Date.now() < deadline) await sleep(100);
      await replay.stop();
      expect(seen, "VP_EVENTS replayed to its end").toBe(lastSeq);

      // Nothing left in flight: the work-queue streams (commands, jobs, facts) drain to empty once every message
      // is acknowledged; a message nobody acknowledges would be work still pending behind the finished runs.
      const queues = [fx.topology.streams.commands.name, fx.topology.streams.jobs.name, fx.topology.streams.state.name];
      const left = async () =>
        Object.fromEntries(await Promise.all(queues.map(async (q) => [q, (await verifier.jsm.streams.info(q)).state.messages] as const)));
      const queueDeadline = Date.now() + 60_000;
      let leftover = await left();
      while (Object.values(leftover).some((n) => n > 0) && Date.now() < queueDeadline) {
        await sleep(1000);
        leftover = await left();
      }
      if (Object.values(leftover).some((n) => n > 0)) console.log(await describeLeftovers(verifier, queues, natsKills));
      expect(leftover, "messages left in the work-queue streams").toEqual(Object.fromEntries(queues.map((q) => [q, 0])));
    } finally {
      await verifier.close().catch(() => undefined);
    }
    const publishedTwice = [...published].filter(([, n]) => n !== 1);
    expect(publishedTwice.slice(0, 10), `${publishedTwice.length} nodes with more than one completed event`).toEqual([]);
    expect([...published.keys()].sort()).toEqual(expected);

    // ---- No paid provider job created twice: one HeyGen job per accepted talking head, each used by one node.
    const heads = accepted.reduce((n, s) => n + s.heads.length, 0);
    if (fakes.heygen.creates !== heads || new Set(providerJobs).size !== providerJobs.length) {
      // Evidence for the report: every job whose reference (vp-<jobId>, in the title) was created more than once
      // or is used by no node, with the executors' and the state-writer's lines about that job, in time order.
      const used = new Set(providerJobs);
      const byRef = new Map<string, Array<{ id: string; createdAt: string; used: boolean }>>();
      for (const j of fakes.heygen.jobs.values()) {
        const ref = /vp-[0-9a-f-]{36}/.exec(String(j.extra.title))?.[0] ?? String(j.extra.title);
        byRef.set(ref, [...(byRef.get(ref) ?? []), { id: j.id, createdAt: new Date(j.createdAt).toISOString(), used: used.has(j.id) }]);
      }
      const suspicious = [...byRef].filter(([, jobs]) => jobs.length > 1 || jobs.some((j) => !j.used));
      const faultTimeline = faults.map((f) => `${new Date(soakStart + f.at * 1000).toISOString()} fault ${f.kind}: ${f.detail}`);
      for (const [ref, jobs] of suspicious) {
        const jobId = ref.slice(3);
        const lines = [...fx.processesOf("executor-ai"), ...fx.processesOf("state-writer")]
          .flatMap((p) => p.logs.filter((l) => l.jobId === jobId).map((l): Record<string, unknown> => ({ ...l, process: `${p.name}:${p.pid}` })))
          .sort((a, b) => String(a.time).localeCompare(String(b.time)))
          .map(
            (l) =>
              `${String(l.time)} ${l.process} attempt ${String(l.attempt)} ${String(l.msg)} ${JSON.stringify({ phase: l.phase, providerJobId: l.providerJobId, code: l.code, reason: l.reason, err: l.err })}`,
          );
        console.log(`[soak] HeyGen jobs for ${ref}: ${JSON.stringify(jobs)}\n  ${lines.join("\n  ")}\n  faults:\n  ${faultTimeline.join("\n  ")}`);
      }
    }
    expect(providerJobs).toHaveLength(heads);
    expect(new Set(providerJobs).size).toBe(heads);
    expect(fakes.heygen.creates).toBe(heads);
    expect([...fakes.heygen.jobs.keys()].sort()).toEqual([...providerJobs].sort());

    // ---- Refused runs left nothing behind.
    const refusedIds = new Set(refused.map((s) => s.pipelineId));
    expect(runs.filter((r) => refusedIds.has(r.pipeline_id)).map((r) => [r.pipeline_id, r.id, r.status])).toEqual([]);
    const leftBehind = rows.filter((r) => refusedIds.has(r.pipeline_id) && (r.status !== "pending" || r.metadata?.jobId !== undefined));
    expect(leftBehind.slice(0, 10).map((r) => [key(r.pipeline_id, r.id), r.status, r.metadata])).toEqual([]);

    // ---- No process crashed: the only exits are fault 1's SIGKILLs; no ffmpeg left anywhere.
    const all = (["gateway", "scheduler", "state-writer", "executor-ffmpeg", "executor-ai"] as const).flatMap((n) => fx.processesOf(n));
    const crashed = all.filter((p) => (p.proc.exitCode !== null || p.proc.signalCode !== null) && !killedPids.has(p.pid));
    expect(crashed.map((p) => ({ name: p.name, pid: p.pid, code: p.proc.exitCode, signal: p.proc.signalCode, last: p.logs.slice(-3) }))).toEqual([]);
    expect(await ffmpegProcessesUnder(fx.scratch)).toEqual([]);

    // ---- Faults: each kind came at least once on a soak long enough for four draws.
    if (DURATION_MS >= 6 * 60_000)
      for (const k of [1, 2, 3, 4] as const) expect(faults.filter((f) => f.kind === k).length, `fault ${k} (${FAULT_NAMES[k]})`).toBeGreaterThan(0);
    expect(faults.length).toBeGreaterThan(0);

    const late = fx.logsOf("state-writer").filter((l) => l.msg === "late or stale result rejected").length;
    const dupDeliveries = [...fx.logsOf("executor-ffmpeg"), ...fx.logsOf("executor-ai")].filter((l) => String(l.msg).startsWith("duplicate delivery")).length;
    console.log(
      `[soak] completions committed ${commits.size} (each once), published ${published.size} (each once); nodes retried ${retried}; late results rejected ${late}; duplicate deliveries acknowledged without work ${dupDeliveries}; HeyGen creates ${fakes.heygen.creates} for ${heads} talking heads`,
    );

    for (const name of ["gateway", "scheduler", "state-writer", "ffmpeg-2", "ai-2"])
      expect(
        verdicts.map((v) => v.process),
        `${name} sampled over the whole soak`,
      ).toContain(name);
    expect(verdicts.filter((v) => !v.flat)).toEqual([]);
  });
});
