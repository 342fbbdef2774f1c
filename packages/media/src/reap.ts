import { mkdir, readdir, readFile, readlink, rm, writeFile } from "node:fs/promises";
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
 * What tells a process apart beyond its pid, where /proc has it (Linux): a pid names a process only within one
 * pid namespace (a restarted container has a new one) and one boot, and a pid is reused once its process is gone.
 */
export interface ProcessIdentity {
  pid: number;
  /** `readlink /proc/self/ns/pid`, e.g. "pid:[4026531836]". */
  pidNs?: string;
  /** /proc/sys/kernel/random/boot_id. */
  bootId?: string;
  /** /proc/<pid>/stat field 22: clock ticks after boot. */
  startTime?: string;
}

async function readOrUndefined(read: () => Promise<string>): Promise<string | undefined> {
  try {
    return (await read()).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Field 22 of /proc/<pid>/stat; comm (field 2) may hold spaces and ')', so count from after the last ')'. */
async function startTimeOf(pid: number | "self"): Promise<string | undefined> {
  return readOrUndefined(async () => {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? "";
  });
}

/** A process's identity, this process's by default (the pid alone where there is no /proc). */
export async function processIdentity(pid: number = process.pid): Promise<ProcessIdentity> {
  const proc = pid === process.pid ? "self" : pid;
  const [pidNs, bootId, startTime] = await Promise.all([
    readOrUndefined(() => readlink(`/proc/${proc}/ns/pid`)),
    readOrUndefined(() => readFile("/proc/sys/kernel/random/boot_id", "utf8")),
    startTimeOf(proc),
  ]);
  return { pid, pidNs, bootId, startTime };
}

/**
 * Whether the process a recorded identity names is alive and the same process. With /proc: only an owner of our
 * pid namespace and boot whose pid answers and started when recorded; an owner without a namespace (an older
 * build) can't be told from a reused pid, so it is not. Without /proc (macOS): the pid answering.
 */
async function ownerAlive(owner: ProcessIdentity, me: ProcessIdentity): Promise<boolean> {
  if (me.pidNs === undefined) return alive(owner.pid);
  if (owner.pidNs !== me.pidNs) return false;
  if (owner.bootId !== undefined && me.bootId !== undefined && owner.bootId !== me.bootId) return false;
  if (!alive(owner.pid)) return false;
  const startTime = await startTimeOf(owner.pid);
  return owner.startTime === undefined || startTime === undefined || startTime === owner.startTime;
}

/**
 * Takes a work root for this process before anything under it is reaped: an executor deletes every job
 * directory it finds at start, so two live executors on one root would delete each other's work. The owner file
 * names its process by pid, pid namespace, boot and start time, so the claim of a process that is gone (killed, a
 * restarted container, a reused pid) is taken over; one of a live other process refuses the start with
 * WorkRootInUseError.
 */
export async function claimWorkRoot(workRoot: string, service: string): Promise<void> {
  await mkdir(workRoot, { recursive: true });
  const file = join(workRoot, WORK_ROOT_OWNER_FILE);
  const me = await processIdentity();
  const mine = JSON.stringify({ ...me, service, at: new Date().toISOString() });
  try {
    await writeFile(file, mine, { flag: "wx" });
    return;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  }
  let owner: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(await readFile(file, "utf8"));
    if (parsed && typeof parsed === "object") owner = parsed as Record<string, unknown>;
  } catch {
    // Unreadable (a crash mid-write): nobody can be proven to own it.
  }
  const text = (value: unknown) => (typeof value === "string" ? value : undefined);
  const pid = owner.pid;
  if (typeof pid === "number" && Number.isSafeInteger(pid) && pid > 0) {
    const recorded: ProcessIdentity = { pid, pidNs: text(owner.pidNs), bootId: text(owner.bootId), startTime: text(owner.startTime) };
    // Our own pid in our namespace: this process, or a previous life of it that had the same pid.
    const ours = pid === me.pid && recorded.pidNs === me.pidNs;
    if (!ours && (await ownerAlive(recorded, me))) throw new WorkRootInUseError(workRoot, { pid, service: text(owner.service) });
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
