/**
 * Shared by the benches: CPU time of a process from Linux's /proc, and the environment that makes every service of
 * a stack write a V8 CPU profile when it stops (bench/cpu-profile.mjs).
 */
import { execFileSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";

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
