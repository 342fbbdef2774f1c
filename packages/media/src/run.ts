import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, delimiter, join } from "node:path";
import { SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { CancelledError, FfmpegError, TimeoutError } from "./errors";

/** The subset of a pino logger media needs; `@vp/telemetry`'s Logger satisfies it. */
export interface MediaLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface RunFfmpegOptions {
  /** Abort kills the whole process group and rejects with CancelledError. */
  signal?: AbortSignal;
  /** Kills the process group and rejects with TimeoutError after this long. */
  timeoutMs?: number;
  /** Seconds of output expected, for turning ffmpeg's out_time into a percentage. */
  totalSeconds?: number;
  /** Percent done, 0-100, never decreasing. */
  onProgress?: (percent: number) => void;
  /** Working directory of ffmpeg; defaults to workDir. */
  cwd?: string;
  /**
   * The job's work directory: `<workDir>/ffmpeg.pid` names the running process group while it runs, so
   * reapOrphans can kill it after a crash of this process. One ffmpeg at a time per workDir.
   */
  workDir?: string;
  logger?: MediaLogger;
  /**
   * ffmpeg 5.1 treats a read error in the middle of an input (a truncated MP4's "partial file", a corrupt
   * packet) as the end of that input and exits 0 with a shorter output. By default such a run is a failure
   * (FfmpegError with invalidInput); set this to accept whatever could be read.
   */
  acceptDamagedInput?: boolean;
}

export interface RunFfmpegResult {
  /** CPU time (user + system) ffmpeg used, read from /proc while it ran (0 where there is no /proc). */
  cpuSeconds: number;
  wallSeconds: number;
}

export const FFMPEG_PID_FILE = "ffmpeg.pid";

/** USER_HZ: the unit of utime/stime in /proc/<pid>/stat; 100 on every Linux ABI Node runs on. */
const CLOCK_TICKS_PER_SECOND = 100;

/** utime + stime of a live process in seconds, or undefined once it is gone. */
function cpuSecondsOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // "pid (comm) state ppid ..." - comm may hold spaces; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? ticks / CLOCK_TICKS_PER_SECOND : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Errors ffmpeg prints about an input while still exiting 0 (it stops reading the damaged input and
 * finishes the output from what it had): the demuxer's, about the file's structure, and an input's read
 * error ("<input>: Invalid data found when processing input", a copy's bitstream filter failing on a cut
 * packet). A decoder's complaint
 * about one bad frame ("Error while decoding stream", an MP3's junk "Header missing") is not one of them:
 * real files have those and still play.
 */
const DAMAGED_INPUT =
  /partial file|corrupt input packet|ended prematurely|error reading header|Format not on whitelist|Impossible to open|filter failed to receive output packet|^(?!Error while decoding)[^\n]*: Invalid data found when processing input$/im;

/**
 * ffmpeg 5.1 also exits 0 when it could not finish the output: "Error writing trailer" (an MP4 without its
 * moov, e.g. a full disk or a `-moov_size` reservation that was too small) is not a playable file.
 */
const OUTPUT_UNFINISHED = /Error writing trailer/i;

/** Stderr kept in memory per run; the tail is all an error message needs. */
const STDERR_KEEP_BYTES = 64 * 1024;
const STDERR_TAIL_LINES = 5;

/** Process groups of ffmpeg runs in flight, killed if this process exits while they run. */
const running = new Set<number>();
let exitHookInstalled = false;

function killGroup(pid: number): void {
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // Already gone.
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const pid of running) killGroup(pid);
  });
}

let setprivPath: string | null | undefined;

/**
 * util-linux `setpriv --pdeathsig KILL`, when this machine has it (Debian always does: util-linux is
 * essential). ffmpeg 5.1 ignores SIGPIPE, so it does NOT die when the reader of its `-progress pipe:1`
 * goes away: without a parent-death signal a SIGKILLed executor would leave its ffmpeg running for the
 * whole encode. The kernel delivers the signal when the thread that spawned ffmpeg dies; Node spawns from
 * its main thread, which lives as long as the process.
 */
function findSetpriv(): string | null {
  if (setprivPath !== undefined) return setprivPath;
  setprivPath = null;
  if (process.platform !== "linux") return setprivPath;
  for (const dir of (process.env.PATH ?? "/usr/bin:/bin").split(delimiter)) {
    const candidate = join(dir || ".", "setpriv");
    try {
      accessSync(candidate, constants.X_OK);
      setprivPath = candidate;
      break;
    } catch {
      // not here
    }
  }
  return setprivPath;
}

/** Replaces `file:/abs/path` and `/abs/path` occurrences with the bare file name. */
export function scrubPaths(text: string, paths: readonly string[]): string {
  let out = text;
  for (const p of [...paths].sort((a, b) => b.length - a.length)) {
    if (!p) continue;
    out = out.split(p).join(basename(p.replace(/^file:/, "")));
  }
  return out;
}

/** The last meaningful lines of ffmpeg's stderr. */
export function stderrTail(stderr: string, lines = STDERR_TAIL_LINES): string {
  const meaningful = stderr
    .split(/\r?\n|\r/)
    // "[mov,mp4,m4a @ 0x55f1412820c0] moov atom not found": the address only makes messages differ.
    .map((l) =>
      l
        .replace(/\[([^\]@]+?) @ 0x[0-9a-f]+\]/g, "[$1]")
        // The whitelist itself is long and says nothing to a producer.
        .replace(/Format not on whitelist '[^']*'/, "Format not allowed: not a single media file")
        .trim(),
    )
    .filter((l) => l.length > 0);
  // "Conversion failed!" only repeats what the lines above it said.
  const withoutTrailer = meaningful.length > 1 ? meaningful.filter((l) => l !== "Conversion failed!") : meaningful;
  return withoutTrailer.slice(-lines).join("\n");
}

function hasOption(args: readonly string[], ...names: string[]): boolean {
  return args.some((a) => names.includes(a));
}

/**
 * Runs ffmpeg with `args` (no shell, ever). Prepends `-nostdin -hide_banner -y -progress pipe:1 -stats_period 0.25 -nostats`
 * and `-v error` unless the caller set a log level. ffmpeg runs in its own process group (detached), so
 * cancel and timeout kill everything it started with one `kill(-pgid)`.
 */
export function runFfmpeg(args: readonly string[], options: RunFfmpegOptions = {}): Promise<RunFfmpegResult> {
  // One "ffmpeg" span per run, a child of the active span (the executor's job span). A no-op when the
  // process never started OpenTelemetry (lambdas, tests).
  return trace.getTracer("@vp/media").startActiveSpan(
    "ffmpeg",
    {
      kind: SpanKind.INTERNAL,
      attributes: {
        "process.executable.name": "ffmpeg",
        "vp.ffmpeg.arg_count": args.length,
        ...(options.totalSeconds !== undefined ? { "vp.ffmpeg.total_seconds": options.totalSeconds } : {}),
        ...(options.timeoutMs !== undefined ? { "vp.ffmpeg.timeout_ms": options.timeoutMs } : {}),
      },
    },
    async (span) => {
      try {
        return await runFfmpegProcess(args, options);
      } catch (err) {
        span.recordException(err instanceof Error ? err : new Error(String(err)));
        span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.name : "ffmpeg failed" });
        throw err;
      } finally {
        span.end();
      }
    },
  );
}

function runFfmpegProcess(args: readonly string[], options: RunFfmpegOptions): Promise<RunFfmpegResult> {
  const { signal, workDir, logger } = options;
  const startedAt = performance.now();
  const cwd = options.cwd ?? workDir;
  if (signal?.aborted) return Promise.reject(new CancelledError(undefined, { cause: signal.reason }));

  const [command, commandArgs] = ffmpegCommand(args);
  const pathArgs = args.filter((a) => a.startsWith("file:") || a.startsWith("/"));
  if (cwd) pathArgs.push(cwd);

  return new Promise<RunFfmpegResult>((resolvePromise, rejectPromise) => {
    let child: ChildProcess;
    try {
      child = spawn(command, commandArgs, { cwd, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    } catch (error) {
      rejectPromise(error);
      return;
    }
    const pid = child.pid;
    const pidFile = workDir ? join(workDir, FFMPEG_PID_FILE) : undefined;
    trackGroup(pid, pidFile, logger);
    logger?.debug({ pid, args: scrubPaths(args.join(" "), pathArgs) }, "ffmpeg started");

    const stopper = stopOnAbortOrTimeout(pid, signal, options.timeoutMs);
    const progress = readProgress(child, pid, options);
    const stderr = collectStderr(child);
    const finish = () => {
      untrackGroup(pid, pidFile);
      stopper.dispose();
    };

    child.once("error", (error) => {
      finish();
      rejectPromise(error);
    });
    child.once("close", (code, sig) => {
      finish();
      if (stopper.reason) {
        rejectPromise(stopper.reason);
        return;
      }
      const failure = exitFailure(code, sig, stderr(), pathArgs, options.acceptDamagedInput);
      if (failure) {
        rejectPromise(failure);
        return;
      }
      progress.report(100);
      resolvePromise({ cpuSeconds: progress.cpuSeconds(), wallSeconds: (performance.now() - startedAt) / 1000 });
    });
  });
}

/** The executable and arguments of a run: ffmpeg with the runner's own options first, under setpriv where there is one. */
function ffmpegCommand(args: readonly string[]): [string, string[]] {
  const fullArgs = [
    "-nostdin",
    "-hide_banner",
    "-y",
    ...(hasOption(args, "-v", "-loglevel") ? [] : ["-v", "error"]),
    "-progress",
    "pipe:1",
    // Progress blocks four times a second (ffmpeg's default is two): the runner forwards at most ~3/s.
    "-stats_period",
    "0.25",
    "-nostats",
    ...args,
  ];
  const setpriv = findSetpriv();
  return setpriv ? [setpriv, ["--pdeathsig", "KILL", "--", "ffmpeg", ...fullArgs]] : ["ffmpeg", fullArgs];
}

/** Registers a started process group: killed if this process exits, and named in the pid file for reapOrphans. */
function trackGroup(pid: number | undefined, pidFile: string | undefined, logger: MediaLogger | undefined): void {
  if (pid === undefined) return;
  running.add(pid);
  installExitHook();
  if (!pidFile) return;
  try {
    writeFileSync(pidFile, `${pid}\n`);
  } catch (error) {
    logger?.warn({ err: error, pidFile }, "could not write ffmpeg pid file");
  }
}

/** Forgets a process group that has ended, and its pid file. */
function untrackGroup(pid: number | undefined, pidFile: string | undefined): void {
  if (pid !== undefined) running.delete(pid);
  if (pidFile) rmSync(pidFile, { force: true });
}

/** Kills the process group once, on abort or after timeoutMs; `reason` is then what the run rejects with. */
function stopOnAbortOrTimeout(
  pid: number | undefined,
  signal: AbortSignal | undefined,
  timeoutMs: number | undefined,
): { readonly reason: CancelledError | TimeoutError | undefined; dispose(): void } {
  let stopReason: CancelledError | TimeoutError | undefined;
  const stop = (reason: CancelledError | TimeoutError) => {
    if (stopReason) return;
    stopReason = reason;
    if (pid !== undefined) killGroup(pid);
  };
  const onAbort = () => stop(new CancelledError(undefined, { cause: signal?.reason }));
  signal?.addEventListener("abort", onAbort, { once: true });
  const timer = timeoutMs !== undefined ? setTimeout(() => stop(new TimeoutError(timeoutMs)), timeoutMs) : undefined;
  return {
    get reason() {
      return stopReason;
    },
    dispose() {
      signal?.removeEventListener("abort", onAbort);
      if (timer) clearTimeout(timer);
    },
  };
}

/**
 * Reads ffmpeg's `-progress pipe:1` blocks from stdout: out_time becomes a percentage of totalSeconds for
 * onProgress (never decreasing), and each block samples the process's CPU time.
 */
function readProgress(
  child: ChildProcess,
  pid: number | undefined,
  { totalSeconds, onProgress, logger }: Pick<RunFfmpegOptions, "totalSeconds" | "onProgress" | "logger">,
): { report(percent: number): void; cpuSeconds(): number } {
  let lastPercent = -1;
  const report = (percent: number) => {
    if (!onProgress) return;
    const p = Math.max(0, Math.min(100, percent));
    if (p <= lastPercent) return;
    lastPercent = p;
    try {
      onProgress(p);
    } catch (error) {
      logger?.warn({ err: error }, "progress callback threw");
    }
  };

  // Sampled at every progress block (every 0.5 s) and at "progress=end", which ffmpeg prints when the work
  // is done; after exit the kernel has reaped the process and its counters with it.
  let cpuSeconds = 0;
  const sampleCpu = () => {
    if (pid === undefined) return;
    const now = cpuSecondsOf(pid);
    if (now !== undefined && now > cpuSeconds) cpuSeconds = now;
  };

  let stdoutBuffer = "";
  child.stdout?.setEncoding("utf8");
  child.stdout?.on("data", (chunk: string) => {
    stdoutBuffer += chunk;
    let nl: number;
    while ((nl = stdoutBuffer.indexOf("\n")) >= 0) {
      const line = stdoutBuffer.slice(0, nl).trim();
      stdoutBuffer = stdoutBuffer.slice(nl + 1);
      // out_time_ms is microseconds too (a long-standing ffmpeg misnomer); out_time_us is the honest name.
      const m = /^out_time_(?:us|ms)=(\d+)$/.exec(line);
      if (m && totalSeconds && totalSeconds > 0) report((Number(m[1]) / 1e6 / totalSeconds) * 100);
      if (line.startsWith("progress=")) sampleCpu();
    }
  });
  return { report, cpuSeconds: () => cpuSeconds };
}

/** Keeps the last STDERR_KEEP_BYTES (or up to twice that) of ffmpeg's stderr; the returned function reads it. */
function collectStderr(child: ChildProcess): () => string {
  let stderr = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (chunk: string) => {
    stderr += chunk;
    if (stderr.length > STDERR_KEEP_BYTES * 2) stderr = stderr.slice(-STDERR_KEEP_BYTES);
  });
  return () => stderr;
}

/**
 * The error a run that ended on its own fails with, or undefined when it succeeded. Exit 0 is not enough:
 * an unfinished output or (unless acceptDamagedInput) damage in an input fails it too.
 */
function exitFailure(
  code: number | null,
  sig: NodeJS.Signals | null,
  stderr: string,
  pathArgs: readonly string[],
  acceptDamagedInput: boolean | undefined,
): FfmpegError | undefined {
  const tail = scrubPaths(stderrTail(stderr), pathArgs);
  if (code === 0 && OUTPUT_UNFINISHED.test(stderr)) {
    // Not the input's fault (FfmpegError.invalidInput stays false unless the input was damaged too).
    return new FfmpegError(tail.split("\n").join("; "), { exitCode: 1, signal: null, stderrTail: tail });
  }
  if (code === 0 && (acceptDamagedInput || !DAMAGED_INPUT.test(stderr))) return undefined;
  if (code === 0) {
    // Exit code 1 for the caller: ffmpeg stopped at damage in the data (FfmpegError.invalidInput).
    return new FfmpegError(tail.split("\n").join("; "), { exitCode: 1, signal: null, stderrTail: tail });
  }
  const message = tail.split("\n").join("; ") || (sig ? `ffmpeg was killed by ${sig}` : `ffmpeg exited with code ${code}`);
  return new FfmpegError(message, { exitCode: code, signal: sig, stderrTail: tail });
}
