import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { rm } from "node:fs/promises";
import { extname, join } from "node:path";
import { MediaError } from "./errors";
import { fileArg, inputArgs } from "./paths";
import { runFfmpeg } from "./run";

export interface TestClipOptions {
  /** Local path of the MP4 to write. */
  path: string;
  durationSeconds: number;
  width: number;
  height: number;
  fps: number;
  /** A 440 Hz tone as AAC; default true. */
  audio?: boolean;
  /** Frequency of the tone, default 440 Hz. */
  toneHz?: number;
  /** 48000 unless set (to make clips whose audio differs). */
  sampleRate?: number;
  /** A solid colour (name like "red" or hex "#336699") instead of the moving test pattern. */
  color?: string;
  signal?: AbortSignal;
}

/** Colour names and hex codes only: the value is spliced into a lavfi graph, where `:`/`,`/`;` would inject. */
const COLOR = /^(?:[A-Za-z]{1,32}|#?[0-9A-Fa-f]{6}(?:[0-9A-Fa-f]{2})?)$/;

/** The lavfi graph string ffmpeg synthesises a test clip from. */
function videoSource(o: TestClipOptions): string {
  const size = `s=${o.width}x${o.height}:r=${o.fps}:d=${o.durationSeconds}`;
  if (o.color === undefined) return `testsrc2=${size}`;
  if (!COLOR.test(o.color)) throw new MediaError(`not a colour: ${JSON.stringify(o.color)}`);
  return `color=c=${o.color.startsWith("#") ? `0x${o.color.slice(1)}` : o.color}:${size}`;
}

/**
 * Writes a real H.264 (yuv420p) + AAC MP4 synthesised by lavfi (testsrc2 or a solid colour, a sine tone),
 * for tests and the demo. Small sizes (320x240) encode in well under a second.
 */
export async function makeTestClip(options: TestClipOptions): Promise<void> {
  const { durationSeconds: d, width, height, fps, audio = true, sampleRate = 48_000 } = options;
  for (const [name, v] of [
    ["durationSeconds", d],
    ["width", width],
    ["height", height],
    ["fps", fps],
    ["sampleRate", sampleRate],
  ] as const) {
    if (!Number.isFinite(v) || v <= 0) throw new MediaError(`test clip ${name} must be a positive number`);
  }
  if (!Number.isInteger(width) || !Number.isInteger(height) || width % 2 || height % 2) {
    throw new MediaError("test clip width and height must be even integers");
  }
  const args = [
    "-f",
    "lavfi",
    "-i",
    videoSource(options),
    ...(audio ? ["-f", "lavfi", "-i", `sine=frequency=${Math.round(options.toneHz ?? 440)}:sample_rate=${Math.round(sampleRate)}:duration=${d}`] : []),
    "-map",
    "0:v",
    ...(audio ? ["-map", "1:a", "-c:a", "aac", "-b:a", "96k", "-ac", "2"] : []),
    "-c:v",
    "libx264",
    "-preset",
    "ultrafast",
    "-pix_fmt",
    "yuv420p",
    "-t",
    String(d),
    "-movflags",
    "+faststart",
    "-f",
    "mp4",
    fileArg(options.path),
  ];
  await runFfmpeg(args, { signal: options.signal });
}

export interface SpeechClipOptions {
  /** Local path of the audio file to write (.wav, .m4a or .mp3; the format follows the extension). */
  path: string;
  text: string;
  /** The clip is padded with silence or cut to exactly this long. */
  durationSeconds: number;
  /** A directory for espeak-ng's raw output (one generated file, removed afterwards). */
  workDir: string;
  signal?: AbortSignal;
}

/**
 * A spoken clip from espeak-ng (Debian's espeak-ng package), resampled to 48 kHz and padded or cut to an
 * exact duration: a real voice for tests and benchmarks of audio mixing.
 */
export async function makeSpeechClip(options: SpeechClipOptions): Promise<void> {
  const { text, durationSeconds: d, signal } = options;
  if (!Number.isFinite(d) || d <= 0) throw new MediaError("speech clip durationSeconds must be a positive number");
  const raw = join(options.workDir, `speech-${randomUUID()}.wav`);
  try {
    await new Promise<void>((resolvePromise, rejectPromise) => {
      // `--` ends options: the text is never read as one.
      execFile("espeak-ng", ["-s", "165", "-w", raw, "--", text], { signal }, (error) => (error ? rejectPromise(error) : resolvePromise()));
    });
    const ext = extname(options.path).toLowerCase();
    const codec =
      ext === ".m4a" ? ["-c:a", "aac", "-b:a", "128k", "-f", "mp4"] : ext === ".mp3" ? ["-c:a", "libmp3lame", "-f", "mp3"] : ["-c:a", "pcm_s16le", "-f", "wav"];
    await runFfmpeg([...inputArgs(raw), "-af", `aresample=48000,apad,atrim=duration=${d}`, "-ac", "1", ...codec, fileArg(options.path)], { signal });
  } finally {
    await rm(raw, { force: true });
  }
}
