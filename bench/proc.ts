/**
 * Shared by the benches: CPU time of a process from Linux's /proc, and the environment that makes every service of
 * a stack write a V8 CPU profile when it stops (bench/cpu-profile.mjs).
 */
import { execFileSync } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { resolve } from "node:path";
import type { Queryable } from "@vp/db";

/** Clock ticks per second of /proc's utime and stime (getconf CLK_TCK; 100 on Linux in practice). */
export const CLK_TCK = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime + stime of a process (all its threads) in ms, or undefined when it is gone (or not on Linux). */
export async function cpuMsOf(pid: number): Promise<number | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    // Fields after "(comm)" (which may hold spaces): state is field 3, utime 14, stime 15.
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
  } catch {
    return undefined;
  }
}

/** Service environment for a CPU profile per service written to `dir` when it stops; {} when no dir is given. */
export function profileEnv(dir: string | undefined): Record<string, string> {
  if (!dir) return {};
  return {
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --import ${resolve(import.meta.dirname, "cpu-profile.mjs")}`.trim(),
    VP_CPU_PROFILE_DIR: resolve(dir),
  };
}

/** Processes whose /proc/<pid>/cmdline matches `re` (nats-server, the Postgres auxiliary processes). */
export async function pidsMatching(re: RegExp): Promise<Array<{ pid: number; cmd: string }>> {
  const found: Array<{ pid: number; cmd: string }> = [];
  for (const entry of await readdir("/proc")) {
    if (!/^[0-9]+$/.test(entry)) continue;
    const cmd = await readFile(`/proc/${entry}/cmdline`, "utf8").then(
      (c) => c.replace(/\0/g, " ").trim(),
      () => "",
    );
    if (re.test(cmd)) found.push({ pid: Number(entry), cmd });
  }
  return found;
}

export interface CpuReport {
  /** Label -> CPU ms during the run. */
  byProcess: Record<string, number>;
  /** Sum over the stack's processes (everything but this bench process). */
  stackMs: number;
  /** This bench process (log parsing of every service, the poller). */
  benchMs: number;
  wallMs: number;
}

interface Tracked {
  label: string;
  first: number;
  last: number;
}

/**
 * Samples the CPU time of a set of processes from start() to stop(). Fixed processes are given by pid; the
 * Postgres backends of `dbName` are listed from pg_stat_activity (through `monitor`, a connection to another
 * database so the poller's own backend is not counted) every `everyMs`: a backend first seen after start()
 * counts from 0 (it was born during the run), one that exits keeps its last sample.
 */
export class CpuMeter {
  private readonly tracked = new Map<number, Tracked>();
  private timer: NodeJS.Timeout | undefined;
  private sampling: Promise<void> = Promise.resolve();
  private t0 = 0;
  private bench0: NodeJS.CpuUsage = process.cpuUsage();

  constructor(
    private readonly fixed: () => Array<{ pid: number; label: string }>,
    private readonly monitor: Queryable,
    private readonly dbName: string,
    private readonly everyMs = 250,
  ) {}

  private async backends(): Promise<Array<{ pid: number; label: string }>> {
    const { rows } = await this.monitor.query<{ pid: number; application_name: string }>(
      `SELECT pid, application_name FROM pg_stat_activity WHERE datname = $1`,
      [this.dbName],
    );
    return rows.map((r) => ({ pid: r.pid, label: `postgres backends: ${r.application_name || "(unnamed)"}` }));
  }

  private async sample(initial: boolean): Promise<void> {
    const procs = [...this.fixed(), ...(await this.backends().catch(() => []))];
    await Promise.all(
      procs.map(async ({ pid, label }) => {
        const ms = await cpuMsOf(pid);
        if (ms === undefined) return;
        const t = this.tracked.get(pid);
        if (t) t.last = ms;
        else this.tracked.set(pid, { label, first: initial ? ms : 0, last: ms });
      }),
    );
    // Already tracked processes no longer listed (a backend that is idle is still listed; one that exited is not).
    await Promise.all(
      [...this.tracked].map(async ([pid, t]) => {
        const ms = await cpuMsOf(pid);
        if (ms !== undefined && ms >= t.last) t.last = ms;
      }),
    );
  }

  async start(): Promise<void> {
    this.tracked.clear();
    this.t0 = Date.now();
    this.bench0 = process.cpuUsage();
    await this.sample(true);
    this.timer = setInterval(() => {
      this.sampling = this.sampling.then(() => this.sample(false)).catch(() => undefined);
    }, this.everyMs);
  }

  async stop(): Promise<CpuReport> {
    clearInterval(this.timer);
    await this.sampling;
    await this.sample(false);
    const wallMs = Date.now() - this.t0;
    const bench = process.cpuUsage(this.bench0);
    const byProcess: Record<string, number> = {};
    for (const t of this.tracked.values()) byProcess[t.label] = (byProcess[t.label] ?? 0) + (t.last - t.first);
    const stackMs = Object.values(byProcess).reduce((a, b) => a + b, 0);
    return { byProcess, stackMs, benchMs: (bench.user + bench.system) / 1000, wallMs };
  }
}
