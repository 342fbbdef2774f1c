import { execFile } from "node:child_process";
import { MediaError } from "./errors";
import { inputArgs } from "./paths";

/**
 * Measurements of a local media file for checks (tests, the benchmark, a producer's sanity check): what a
 * frame looks like, how loud a stretch is, which streams there are. Each is one ffmpeg/ffprobe run over the
 * same input discipline as the work itself (file protocol, single-file containers).
 */

function run(command: "ffmpeg" | "ffprobe", args: string[], maxBuffer = 256 * 1024 * 1024): Promise<{ stdout: Buffer; stderr: string }> {
  return new Promise((resolvePromise, rejectPromise) => {
    execFile(command, args, { encoding: "buffer", maxBuffer }, (error, stdout, stderr) => {
      if (error) rejectPromise(new MediaError(`${command} failed: ${stderr.toString("utf8").trim().split("\n").slice(-3).join("; ")}`, { cause: error }));
      else resolvePromise({ stdout, stderr: stderr.toString("utf8") });
    });
  });
}

export interface StreamSummary {
  index: number;
  type: string;
  codec: string;
  width?: number;
  height?: number;
  fps?: string;
  sampleRate?: number;
  channels?: number;
  duration?: number;
}

/** Every stream of a file (ffprobe -show_streams), in order. */
export async function streamSummary(path: string): Promise<StreamSummary[]> {
  const { stdout } = await run("ffprobe", ["-v", "error", ...inputArgs(path), "-show_streams", "-print_format", "json"]);
  const data = JSON.parse(stdout.toString("utf8")) as { streams?: Array<Record<string, unknown>> };
  return (data.streams ?? []).map((s) => ({
    index: Number(s.index),
    type: String(s.codec_type),
    codec: String(s.codec_name),
    width: s.width as number | undefined,
    height: s.height as number | undefined,
    fps: s.r_frame_rate as string | undefined,
    sampleRate: s.sample_rate ? Number(s.sample_rate) : undefined,
    channels: s.channels as number | undefined,
    duration: s.duration ? Number(s.duration) : undefined,
  }));
}

export interface AudioLevel {
  /** dB relative to full scale; digital silence reads about -91. */
  meanDb: number;
  maxDb: number;
}

/** Loudness of the first audio stream from `startSeconds` for `durationSeconds` (volumedetect). */
export async function audioLevel(path: string, startSeconds: number, durationSeconds: number): Promise<AudioLevel> {
  const { stderr } = await run("ffmpeg", [
    "-nostdin",
    "-hide_banner",
    "-v",
    "info",
    "-ss",
    String(startSeconds),
    "-t",
    String(durationSeconds),
    ...inputArgs(path),
    "-map",
    "0:a:0",
    "-af",
    "volumedetect",
    "-f",
    "null",
    "-",
  ]);
  const mean = /mean_volume:\s*(-?[\d.]+|-inf) dB/.exec(stderr);
  const max = /max_volume:\s*(-?[\d.]+|-inf) dB/.exec(stderr);
  if (!mean || !max) throw new MediaError("volumedetect reported nothing (no audio in that stretch?)");
  const db = (s: string) => (s === "-inf" ? -Infinity : Number(s));
  return { meanDb: db(mean[1]!), maxDb: db(max[1]!) };
}

export interface Frame {
  width: number;
  height: number;
  /** RGB24, row by row. */
  rgb: Buffer;
  /** [r, g, b] of one pixel. */
  pixel(x: number, y: number): [number, number, number];
}

/** The decoded video frame at `atSeconds` as RGB. */
export async function decodeFrame(path: string, atSeconds: number, size: { width: number; height: number }): Promise<Frame> {
  const { width, height } = size;
  const { stdout } = await run("ffmpeg", [
    "-nostdin",
    "-v",
    "error",
    "-ss",
    String(atSeconds),
    ...inputArgs(path),
    "-frames:v",
    "1",
    "-vf",
    `scale=${width}:${height}`,
    "-pix_fmt",
    "rgb24",
    "-f",
    "rawvideo",
    "-",
  ]);
  if (stdout.length !== width * height * 3) throw new MediaError(`no frame at ${atSeconds} s (got ${stdout.length} bytes)`);
  return {
    width,
    height,
    rgb: stdout,
    pixel(x, y) {
      const o = (y * width + x) * 3;
      return [stdout[o]!, stdout[o + 1]!, stdout[o + 2]!];
    },
  };
}

/** Mean absolute difference (0-255) of two frames of the same size inside a rectangle. */
export function regionDifference(a: Frame, b: Frame, region: { x: number; y: number; width: number; height: number }): number {
  if (a.width !== b.width || a.height !== b.height) throw new MediaError("frames differ in size");
  let sum = 0;
  let n = 0;
  for (let y = region.y; y < region.y + region.height; y++) {
    for (let x = region.x; x < region.x + region.width; x++) {
      const o = (y * a.width + x) * 3;
      sum += Math.abs(a.rgb[o]! - b.rgb[o]!) + Math.abs(a.rgb[o + 1]! - b.rgb[o + 1]!) + Math.abs(a.rgb[o + 2]! - b.rgb[o + 2]!);
      n += 3;
    }
  }
  return n ? sum / n : 0;
}

/** MD5 of a stream's packets as stored (`-c copy`): equal for a stream that was copied, not re-encoded. */
export async function streamHash(path: string, stream: "v:0" | "a:0"): Promise<string> {
  const { stdout } = await run("ffmpeg", ["-nostdin", "-v", "error", ...inputArgs(path), "-map", `0:${stream}`, "-c", "copy", "-f", "md5", "-"]);
  return stdout.toString("utf8").trim();
}
