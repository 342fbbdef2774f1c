import { spawn } from "node:child_process";
import { stat } from "node:fs/promises";
import { basename } from "node:path";
import { CancelledError, MediaError, TimeoutError } from "./errors";
import { fileArg, SAFE_INPUT_FORMATS } from "./paths";
import { scrubPaths, stderrTail } from "./run";

export interface VideoStreamInfo {
  codec: string;
  /** The codec's profile ("High", "Constrained Baseline"), when ffprobe names one. */
  profile?: string;
  width: number;
  height: number;
  /** Frames per second (r_frame_rate, else avg_frame_rate); 0 when ffprobe does not know. */
  fps: number;
  pixFmt: string;
  timeBase: string;
}

export interface AudioStreamInfo {
  codec: string;
  sampleRate: number;
  channels: number;
  channelLayout: string;
}

export interface ProbeResult {
  /** Container duration, else the longest stream's; 0 for still images. */
  durationSeconds: number;
  sizeBytes: number;
  formatName: string;
  /** The first video stream that is not cover art. */
  video?: VideoStreamInfo;
  audio?: AudioStreamInfo;
}

export interface ProbeOptions {
  signal?: AbortSignal;
  /** ffprobe reads headers only; a file that takes longer than this is treated as a hang. */
  timeoutMs?: number;
}

interface FfprobeStream {
  codec_type?: string;
  codec_name?: string;
  profile?: string;
  width?: number;
  height?: number;
  r_frame_rate?: string;
  avg_frame_rate?: string;
  pix_fmt?: string;
  time_base?: string;
  sample_rate?: string;
  channels?: number;
  channel_layout?: string;
  duration?: string;
  disposition?: { attached_pic?: number };
}

interface FfprobeOutput {
  streams?: FfprobeStream[];
  format?: { format_name?: string; duration?: string; size?: string };
}

function num(value: string | number | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = typeof value === "number" ? value : Number(value);
  return Number.isFinite(n) ? n : undefined;
}

/** "30000/1001" -> 29.97; "0/0" -> undefined. */
export function parseRate(rate: string | undefined): number | undefined {
  if (!rate) return undefined;
  const [a, b] = rate.split("/");
  const n = Number(a);
  const d = b === undefined ? 1 : Number(b);
  if (!Number.isFinite(n) || !Number.isFinite(d) || n <= 0 || d <= 0) return undefined;
  return Math.round((n / d) * 1000) / 1000;
}

/** Turns ffprobe's JSON into a ProbeResult; exported for tests and for callers that already ran ffprobe. */
export function parseProbeOutput(data: FfprobeOutput, sizeBytes: number): ProbeResult {
  const streams = data.streams ?? [];
  const v = streams.find((s) => s.codec_type === "video" && s.disposition?.attached_pic !== 1);
  const a = streams.find((s) => s.codec_type === "audio");
  const streamDurations = streams.map((s) => num(s.duration) ?? 0);
  const durationSeconds = num(data.format?.duration) ?? Math.max(0, ...streamDurations);
  const result: ProbeResult = {
    durationSeconds,
    sizeBytes: num(data.format?.size) ?? sizeBytes,
    formatName: data.format?.format_name ?? "unknown",
  };
  if (v) {
    result.video = {
      codec: v.codec_name ?? "unknown",
      ...(v.profile ? { profile: v.profile } : {}),
      width: v.width ?? 0,
      height: v.height ?? 0,
      fps: parseRate(v.r_frame_rate) ?? parseRate(v.avg_frame_rate) ?? 0,
      pixFmt: v.pix_fmt ?? "unknown",
      timeBase: v.time_base ?? "",
    };
  }
  if (a) {
    result.audio = {
      codec: a.codec_name ?? "unknown",
      sampleRate: num(a.sample_rate) ?? 0,
      channels: a.channels ?? 0,
      channelLayout: a.channel_layout ?? "",
    };
  }
  return result;
}

/**
 * Reads a local media file's container and streams with ffprobe. A file ffprobe cannot read, or one with
 * neither audio nor video, rejects with MediaError("not a readable media file: <ffprobe's reason>").
 */
export async function probe(path: string, options: ProbeOptions = {}): Promise<ProbeResult> {
  const { signal, timeoutMs = 60_000 } = options;
  if (signal?.aborted) throw new CancelledError("ffprobe cancelled", { cause: signal.reason });
  const input = fileArg(path);
  let sizeBytes: number;
  try {
    sizeBytes = (await stat(input.slice("file:".length))).size;
  } catch (error) {
    throw new MediaError(`cannot read ${basename(input)}`, { cause: error });
  }

  const args = [
    "-v",
    "error",
    "-protocol_whitelist",
    "file",
    "-format_whitelist",
    SAFE_INPUT_FORMATS.join(","),
    "-print_format",
    "json",
    "-show_format",
    "-show_streams",
    input,
  ];
  const { code, stdout, stderr, stopped } = await new Promise<{
    code: number | null;
    stdout: string;
    stderr: string;
    stopped?: Error;
  }>((resolvePromise, rejectPromise) => {
    const child = spawn("ffprobe", args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    let stoppedBy: Error | undefined;
    const kill = (reason: Error) => {
      stoppedBy ??= reason;
      child.kill("SIGKILL");
    };
    const onAbort = () => kill(new CancelledError("ffprobe cancelled", { cause: signal?.reason }));
    signal?.addEventListener("abort", onAbort, { once: true });
    const timer = setTimeout(() => kill(new TimeoutError(timeoutMs)), timeoutMs);
    child.stdout.setEncoding("utf8").on("data", (c: string) => (out += c));
    child.stderr.setEncoding("utf8").on("data", (c: string) => {
      if (err.length < 64 * 1024) err += c;
    });
    child.once("error", (error) => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      rejectPromise(error);
    });
    child.once("close", (exitCode) => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      resolvePromise({ code: exitCode, stdout: out, stderr: err, stopped: stoppedBy });
    });
  });
  if (stopped) throw stopped;

  const reason = (text: string) => {
    // A playlist, a concat script or another container that names further files: say what it is, not the list.
    const refused = /\[([^\] @]+) @ 0x[0-9a-f]+\] Format not on whitelist/.exec(text);
    if (refused) return `its format (${refused[1]}) is not an accepted media container`;
    // ffprobe prefixes its reason with the input name; the reason is what matters to a person.
    const cleaned = text.split(`${input}: `).join("");
    return scrubPaths(stderrTail(cleaned, 3), [input]).split("\n").join("; ") || `ffprobe exited with code ${code}`;
  };
  if (code !== 0) throw new MediaError(`not a readable media file: ${reason(stderr)}`);

  let data: FfprobeOutput;
  try {
    data = JSON.parse(stdout) as FfprobeOutput;
  } catch (error) {
    throw new MediaError("not a readable media file: ffprobe printed no usable description", { cause: error });
  }
  const result = parseProbeOutput(data, sizeBytes);
  if (!result.video && !result.audio) throw new MediaError("not a readable media file: it has no audio or video stream");
  return result;
}
