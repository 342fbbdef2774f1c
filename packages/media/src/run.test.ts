import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CancelledError, FfmpegError, FFMPEG_PID_FILE, reapOrphans, runFfmpeg, TimeoutError } from "./index";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "vp-media-run-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Real-time, so it runs for as long as a test needs it to. */
const LONG_RUN = ["-re", "-f", "lavfi", "-i", "testsrc2=s=160x120:r=10:d=120", "-f", "null", "-"];

/** Dead means gone, or a zombie nobody has reaped yet: either way it does no more work. */
async function isDead(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return true;
  }
}

async function waitFor<T>(check: () => Promise<T | undefined> | T | undefined, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function readPid(workDir: string): Promise<number | undefined> {
  try {
    const n = Number.parseInt(await readFile(join(workDir, FFMPEG_PID_FILE), "utf8"), 10);
    return Number.isSafeInteger(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

describe("runFfmpeg", () => {
  it("reports progress up to 100 and removes its pid file", async () => {
    const workDir = join(dir, "progress");
    await mkdir(workDir);
    const seen: number[] = [];
    await runFfmpeg(["-f", "lavfi", "-i", "testsrc2=s=160x120:r=10:d=2", "-f", "null", "-"], {
      workDir,
      totalSeconds: 2,
      onProgress: (p) => seen.push(p),
    });
    expect(seen.at(-1)).toBe(100);
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    expect(existsSync(join(workDir, FFMPEG_PID_FILE))).toBe(false);
  });

  it("fails with the meaningful end of stderr, paths reduced to names", async () => {
    const junk = join(dir, "junk.mp4");
    await writeFile(junk, Buffer.alloc(4096, 7));
    const error = await runFfmpeg(["-protocol_whitelist", "file", "-i", `file:${junk}`, "-f", "null", "-"]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FfmpegError);
    const e = error as FfmpegError;
    expect(e.exitCode).toBe(1);
    expect(e.message).toBe("[mov,mp4,m4a,3gp,3g2,mj2] moov atom not found; junk.mp4: Invalid data found when processing input");
    expect(e.message).not.toContain(dir);
    expect(e.stderrTail).not.toMatch(/ffmpeg version|Copyright/);
    expect(e.invalidInput).toBe(true);
  });

  it("a failure that is not about the data is not an invalid-input error", async () => {
    const error = (await runFfmpeg(["-f", "lavfi", "-i", "testsrc2=d=1", "-c:v", "no-such-encoder", "-f", "null", "-"]).catch(
      (e: unknown) => e,
    )) as FfmpegError;
    expect(error).toBeInstanceOf(FfmpegError);
    expect(error.message).toMatch(/Unknown encoder/);
    expect(error.invalidInput).toBe(false);
  });

  it("kills the process group on abort and rejects with CancelledError", async () => {
    const workDir = join(dir, "abort");
    await mkdir(workDir);
    const controller = new AbortController();
    const run = runFfmpeg(LONG_RUN, { workDir, signal: controller.signal });
    const pid = await waitFor(() => readPid(workDir), 3000);
    controller.abort(new Error("user cancelled"));
    await expect(run).rejects.toBeInstanceOf(CancelledError);
    expect(await isDead(pid)).toBe(true);
    expect(existsSync(join(workDir, FFMPEG_PID_FILE))).toBe(false);
  });

  it("rejects at once when the signal is already aborted", async () => {
    await expect(runFfmpeg(LONG_RUN, { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(CancelledError);
  });

  it("kills the process group on timeout and rejects with TimeoutError", async () => {
    const workDir = join(dir, "timeout");
    await mkdir(workDir);
    const started = Date.now();
    await expect(runFfmpeg(LONG_RUN, { workDir, timeoutMs: 400 })).rejects.toBeInstanceOf(TimeoutError);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it("does not outlive a SIGKILLed parent process", async () => {
    const workDir = join(dir, "orphan");
    await mkdir(workDir);
    const script = fileURLToPath(new URL("./test-fixtures/long-ffmpeg-child.ts", import.meta.url));
    const child = spawn(process.execPath, ["--import", "tsx", script, workDir], { stdio: ["ignore", "pipe", "inherit"] });
    try {
      // Wait until ffmpeg is producing progress, i.e. really running under the child.
      await new Promise<void>((resolve, reject) => {
        child.stdout.once("data", () => resolve());
        child.once("exit", () => reject(new Error("child exited early")));
      });
      const pid = await waitFor(() => readPid(workDir), 3000);
      expect(await isDead(pid)).toBe(false);
      child.kill("SIGKILL");
      await waitFor(async () => ((await isDead(pid)) ? true : undefined), 3000);
    } finally {
      child.kill("SIGKILL");
    }
  });
});

describe("reapOrphans", () => {
  it("kills ffmpeg groups named by stale pid files, spares other processes, removes job dirs", async () => {
    const workRoot = join(dir, "work-root");
    const jobA = join(workRoot, "job-a-1");
    const jobB = join(workRoot, "job-b-1");
    const jobC = join(workRoot, "job-c-1");
    await mkdir(jobA, { recursive: true });
    await mkdir(jobB, { recursive: true });
    await mkdir(jobC, { recursive: true });

    // An ffmpeg left behind by a previous life of the executor (own process group, as runFfmpeg starts it).
    const orphan = spawn("ffmpeg", ["-nostdin", "-v", "error", ...LONG_RUN], { detached: true, stdio: "ignore" });
    // A pid file naming something that is not ffmpeg (a reused pid) must not get it killed.
    const bystander = spawn("sleep", ["30"], { detached: true, stdio: "ignore" });
    try {
      await writeFile(join(jobA, FFMPEG_PID_FILE), `${orphan.pid}\n`);
      await writeFile(join(jobB, FFMPEG_PID_FILE), `${bystander.pid}\n`);
      await writeFile(join(jobC, "partial.mp4"), "x");
      await waitFor(async () => {
        const cmd = await readFile(`/proc/${orphan.pid}/cmdline`, "utf8").catch(() => "");
        return cmd.startsWith("ffmpeg") ? true : undefined;
      }, 3000);

      const result = await reapOrphans(workRoot);
      expect(result.killed).toEqual([orphan.pid]);
      expect(result.removed.sort()).toEqual([jobA, jobB, jobC].sort());
      await waitFor(async () => ((await isDead(orphan.pid!)) ? true : undefined), 3000);
      expect(await isDead(bystander.pid!)).toBe(false);
      expect(existsSync(jobA) || existsSync(jobB) || existsSync(jobC)).toBe(false);
      expect(await reapOrphans(join(dir, "no-such-root"))).toEqual({ killed: [], removed: [] });
    } finally {
      orphan.kill("SIGKILL");
      bystander.kill("SIGKILL");
    }
  });
});
