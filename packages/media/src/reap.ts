import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { FFMPEG_PID_FILE, type MediaLogger } from "./run";

export interface ReapResult {
  /** Process groups that were killed. */
  killed: number[];
  /** Job directories that were removed. */
  removed: string[];
}

/** Whether `pid` is a live ffmpeg leading its own process group (so a reused pid is never killed). */
async function isFfmpegGroupLeader(pid: number): Promise<boolean> {
  try {
    const argv0 = (await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0")[0] ?? "";
    if (basename(argv0) !== "ffmpeg") return false;
    // /proc/<pid>/stat: "pid (comm) state ppid pgrp ..."; comm may hold spaces, so parse after the last ')'.
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return fields[0] !== "Z" && Number(fields[2]) === pid;
  } catch {
    return false;
  }
}

/**
 * For executor start-up: everything under `workRoot` belongs to attempts of a previous life of this
 * executor (workRoot must not be shared by two running executors). Kills the ffmpeg process group named
 * by each job directory's ffmpeg.pid (only when /proc says it really is ffmpeg leading its own group),
 * then removes the job directories. The parent-death signal normally kills ffmpeg already; this covers
 * machines without setpriv and runs that were started by an older build.
 */
export async function reapOrphans(workRoot: string, options: { logger?: MediaLogger } = {}): Promise<ReapResult> {
  const result: ReapResult = { killed: [], removed: [] };
  let entries;
  try {
    entries = await readdir(workRoot, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return result;
    throw error;
  }
  for (const entry of entries) {
    if (!entry.isDirectory()) continue;
    const dir = join(workRoot, entry.name);
    let pid: number | undefined;
    try {
      pid = Number.parseInt(await readFile(join(dir, FFMPEG_PID_FILE), "utf8"), 10);
    } catch {
      pid = undefined;
    }
    if (pid !== undefined && Number.isSafeInteger(pid) && pid > 1 && (await isFfmpegGroupLeader(pid))) {
      try {
        process.kill(-pid, "SIGKILL");
        result.killed.push(pid);
        options.logger?.warn({ pid, dir: entry.name }, "killed orphaned ffmpeg");
      } catch {
        // Gone in the meantime.
      }
    }
    await rm(dir, { recursive: true, force: true });
    result.removed.push(dir);
  }
  if (result.removed.length) options.logger?.info({ removed: result.removed.length, killed: result.killed.length }, "reaped stale job directories");
  return result;
}

/** The lock file naming the process that owns a work root. */
export const WORK_ROOT_OWNER_FILE = ".owner.json";

export class WorkRootInUseError extends Error {
  constructor(workRoot: string, owner: { pid: number; service?: string }) {
    super(
      `WORK_ROOT ${workRoot} is in use by ${owner.service ?? "another executor"} (pid ${owner.pid}): every executor process needs its own ` +
        "WORK_ROOT (it deletes what it finds there at start); set WORK_ROOT to a directory of its own",
    );
    this.name = "WorkRootInUseError";
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Takes a work root for this process before anything under it is reaped: an executor deletes every job
 * directory it finds at start, so two live executors on one root would delete each other's work. The owner file
 * of a process that is gone (killed, or a container restarted as the same pid) is taken over; one of a live
 * other process refuses the start with WorkRootInUseError.
 */
export async function claimWorkRoot(workRoot: string, service: string): Promise<void> {
  await mkdir(workRoot, { recursive: true });
  const file = join(workRoot, WORK_ROOT_OWNER_FILE);
  const mine = JSON.stringify({ pid: process.pid, service, at: new Date().toISOString() });
  try {
    await writeFile(file, mine, { flag: "wx" });
    return;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  }
  let owner: { pid?: unknown; service?: unknown } = {};
  try {
    owner = JSON.parse(await readFile(file, "utf8")) as typeof owner;
  } catch {
    // Unreadable (a crash mid-write): nobody can be proven to own it.
  }
  const pid = typeof owner.pid === "number" ? owner.pid : undefined;
  if (pid !== undefined && pid !== process.pid && alive(pid)) {
    throw new WorkRootInUseError(workRoot, { pid, service: typeof owner.service === "string" ? owner.service : undefined });
  }
  await writeFile(file, mine);
}

/**
 * An executor's start-up on its work root: claim it (refuse a root a live other executor owns), then reap what a
 * previous life of this executor left there (orphaned ffmpeg groups, job directories).
 */
export async function prepareWorkRoot(workRoot: string, service: string, options: { logger?: MediaLogger } = {}): Promise<ReapResult> {
  await claimWorkRoot(workRoot, service);
  return reapOrphans(workRoot, options);
}
