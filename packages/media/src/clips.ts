import { MediaError } from "./errors";
import { fileArg } from "./paths";
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
  for (const [name, v] of [["durationSeconds", d], ["width", width], ["height", height], ["fps", fps], ["sampleRate", sampleRate]] as const) {
    if (!Number.isFinite(v) || v <= 0) throw new MediaError(`test clip ${name} must be a positive number`);
  }
  if (!Number.isInteger(width) || !Number.isInteger(height) || width % 2 || height % 2) {
    throw new MediaError("test clip width and height must be even integers");
  }
  const args = [
    "-f", "lavfi", "-i", videoSource(options),
    ...(audio ? ["-f", "lavfi", "-i", `sine=frequency=440:sample_rate=${Math.round(sampleRate)}:duration=${d}`] : []),
    "-map", "0:v",
    ...(audio ? ["-map", "1:a", "-c:a", "aac", "-b:a", "96k", "-ac", "2"] : []),
    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
    "-t", String(d),
    "-movflags", "+faststart",
    "-f", "mp4",
    fileArg(options.path),
  ];
  await runFfmpeg(args, { signal: options.signal });
}
