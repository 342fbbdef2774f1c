import { rm, symlink, writeFile } from "node:fs/promises";
import { basename, dirname, extname, join, resolve } from "node:path";
import { FfmpegError, MediaError } from "./errors";
import { concatList, fileArg, inputArgs, SAFE_FILE_NAME } from "./paths";
import { describeCopiedOutput, probeInput, type MediaFacts } from "./facts";
import { moovFrontArgs, moovReservation, moovReservationTooSmall } from "./mp4";
import { probe, type ProbeResult } from "./probe";
import { runFfmpeg, type MediaLogger } from "./run";

export type MergeMode = "auto" | "always";
export type MergeStrategy = "copy" | "reencode";

export interface MergeVideosOptions {
  /** Local files, in play order, under names the caller generated. */
  inputs: readonly string[];
  /** Local path of the MP4 to write. */
  output: string;
  /** A directory owned by this run, for the concat list and links. */
  workDir: string;
  /** auto: stream copy when the inputs are compatible; always: re-encode regardless. */
  mode?: MergeMode;
  /** Re-encode target; default the first input's size, rounded down to even numbers (yuv420p needs that). */
  width?: number;
  height?: number;
  /** Re-encode target; default the first input's rate, else 30. */
  fps?: number;
  signal?: AbortSignal;
  onProgress?: (percent: number) => void;
  timeoutMs?: number;
  logger?: MediaLogger;
  /** probe() of each input, when the caller already has them (saves probing again). */
  probes?: readonly (ProbeResult | undefined)[];
  /** What each input's producer stored about it (its node output): used instead of probing where complete (probeInput). */
  facts?: readonly (MediaFacts | undefined)[];
}

export interface MergeVideosResult {
  strategy: MergeStrategy;
  /** The merged file. */
  probe: ProbeResult;
  /** CPU time of the ffmpeg runs (for cost). */
  cpuSeconds: number;
}

/** Codecs the MP4 muxer takes as they are; anything else is re-encoded even when all inputs agree. */
const MP4_COPY_VIDEO = new Set(["h264", "hevc", "mpeg4", "av1"]);
const MP4_COPY_AUDIO = new Set(["aac", "mp3"]);
const DEFAULT_FPS = 30;
const AUDIO_RATE = 48_000;

/**
 * Whether the concat demuxer can join these files with `-c copy`: the same video codec, size, frame rate
 * and pixel format, and the same audio (present in all or none; same codec, rate and channels), in codecs
 * an MP4 can carry.
 */
export function compatible(probes: readonly ProbeResult[]): boolean {
  const first = probes[0];
  if (!first?.video) return false;
  if (!MP4_COPY_VIDEO.has(first.video.codec)) return false;
  if (first.audio && !MP4_COPY_AUDIO.has(first.audio.codec)) return false;
  return probes.every((p) => {
    const v = p.video;
    const a = p.audio;
    if (!v) return false;
    if (v.codec !== first.video!.codec || v.width !== first.video!.width || v.height !== first.video!.height) return false;
    if (v.pixFmt !== first.video!.pixFmt || Math.abs(v.fps - first.video!.fps) > 0.01) return false;
    // The concat demuxer keeps the first file's codec parameters: another profile's frames may not decode with them.
    if ((v.profile ?? "") !== (first.video!.profile ?? "")) return false;
    if (Boolean(a) !== Boolean(first.audio)) return false;
    if (a && first.audio) {
      if (a.codec !== first.audio.codec || a.sampleRate !== first.audio.sampleRate || a.channels !== first.audio.channels) return false;
    }
    return true;
  });
}

const even = (n: number) => Math.max(2, Math.floor(n / 2) * 2);
/** Seconds with the precision ffmpeg's filters parse without surprises. */
const secs = (n: number) => n.toFixed(6);

export interface ReencodeTarget {
  width: number;
  height: number;
  fps: number;
}

export function reencodeTarget(probes: readonly ProbeResult[], config: { width?: number; height?: number; fps?: number }): ReencodeTarget {
  const firstVideo = probes[0]?.video;
  const width = even(config.width ?? firstVideo?.width ?? 0);
  const height = even(config.height ?? firstVideo?.height ?? 0);
  if (width < 16 || height < 16) throw new MediaError(`cannot merge to ${width}x${height}: the size is too small`);
  const firstFps = firstVideo?.fps;
  const fps = config.fps ?? (firstFps && firstFps > 0 && firstFps <= 240 ? firstFps : DEFAULT_FPS);
  return { width, height, fps };
}

/**
 * `-f concat` over a list of names next to the list: safe mode (the default) accepts only such names. The
 * moov goes to the front: into `moovBytes` reserved there when given (moovReservation), else by `+faststart`.
 */
export function buildCopyArgs(listPath: string, output: string, hasAudio: boolean, moovBytes?: number): string[] {
  return [
    "-f",
    "concat",
    ...inputArgs(listPath, ["concat"]),
    "-map",
    "0:v:0",
    ...(hasAudio ? ["-map", "0:a:0"] : []),
    "-c",
    "copy",
    ...moovFrontArgs(moovBytes),
    "-f",
    "mp4",
    fileArg(output),
  ];
}

/**
 * The concat *filter* over inputs normalised to one format: each scaled into the target box with its aspect
 * kept and padded, square pixels, the target rate, yuv420p; audio as 48 kHz stereo, with generated silence
 * for a segment that has none so every segment has both streams (concat's a=1 needs that). Every stream is
 * cut to its segment's container duration, so the result lasts exactly the sum of the inputs.
 */
export function buildReencodeArgs(inputs: readonly string[], probes: readonly ProbeResult[], target: ReencodeTarget, output: string): string[] {
  const { width: w, height: h, fps } = target;
  const withAudio = probes.some((p) => p.audio);
  const chains: string[] = [];
  const pads: string[] = [];
  probes.forEach((p, i) => {
    const d = secs(p.durationSeconds);
    chains.push(
      `[${i}:v:0]setpts=PTS-STARTPTS,scale=${w}:${h}:force_original_aspect_ratio=decrease,` +
        `pad=${w}:${h}:(ow-iw)/2:(oh-ih)/2,setsar=1,fps=${fps},format=yuv420p,` +
        // A video stream shorter than its segment holds its last frame rather than leaving a gap.
        `tpad=stop_mode=clone:stop_duration=${d},trim=duration=${d},setpts=PTS-STARTPTS[v${i}]`,
    );
    pads.push(`[v${i}]`);
    if (withAudio) {
      chains.push(
        p.audio
          ? `[${i}:a:0]asetpts=PTS-STARTPTS,aformat=sample_fmts=fltp:sample_rates=${AUDIO_RATE}:channel_layouts=stereo,` +
              `apad,atrim=duration=${d},asetpts=PTS-STARTPTS[a${i}]`
          : `anullsrc=r=${AUDIO_RATE}:cl=stereo,atrim=duration=${d},aformat=sample_fmts=fltp[a${i}]`,
      );
      pads.push(`[a${i}]`);
    }
  });
  const graph = [...chains, `${pads.join("")}concat=n=${probes.length}:v=1:a=${withAudio ? 1 : 0}[vout]${withAudio ? "[aout]" : ""}`].join(";");
  return [
    ...inputs.flatMap((input) => inputArgs(input)),
    "-filter_complex",
    graph,
    "-map",
    "[vout]",
    ...(withAudio ? ["-map", "[aout]"] : []),
    "-c:v",
    "libx264",
    "-preset",
    "veryfast",
    "-crf",
    "20",
    "-pix_fmt",
    "yuv420p",
    ...(withAudio ? ["-c:a", "aac", "-b:a", "128k", "-ar", String(AUDIO_RATE), "-ac", "2"] : []),
    "-movflags",
    "+faststart",
    "-f",
    "mp4",
    fileArg(output),
  ];
}

/**
 * Names for the concat list, relative to workDir. An input already in workDir under a generated name is
 * used as it is; any other is linked into workDir as `concat-NNN<ext>`, so the list never holds a path.
 */
async function concatNames(inputs: readonly string[], workDir: string): Promise<string[]> {
  const names: string[] = [];
  for (const [i, input] of inputs.entries()) {
    const abs = resolve(input);
    const name = basename(abs);
    if (dirname(abs) === workDir && SAFE_FILE_NAME.test(name)) {
      names.push(name);
      continue;
    }
    const ext = extname(name).toLowerCase();
    const link = `concat-${String(i).padStart(3, "0")}${/^\.[a-z0-9]{1,8}$/.test(ext) ? ext : ""}`;
    await rm(join(workDir, link), { force: true });
    await symlink(abs, join(workDir, link));
    names.push(link);
  }
  return names;
}

/**
 * Joins local video files into one MP4: stream copy through the concat demuxer when the inputs are
 * compatible and mode is auto, else a re-encode through the concat filter. Progress covers the total
 * duration. A copy that ffmpeg rejects falls back to a re-encode.
 */
export async function mergeVideos(options: MergeVideosOptions): Promise<MergeVideosResult> {
  const { inputs, output, signal, onProgress, timeoutMs, logger } = options;
  const workDir = resolve(options.workDir);
  const mode = options.mode ?? "auto";
  if (inputs.length === 0) throw new MediaError("nothing to merge: no inputs");

  if (options.probes && options.probes.length !== inputs.length) throw new MediaError("probes must match inputs one to one");
  if (options.facts && options.facts.length !== inputs.length) throw new MediaError("facts must match inputs one to one");
  // Probed side by side where the facts are not known: each ffprobe is mostly process start-up.
  const probes = await Promise.all(inputs.map((input, i) => options.probes?.[i] ?? probeInput(input, options.facts?.[i], { signal })));
  probes.forEach((p, i) => {
    if (!p.video) throw new MediaError(`input ${i + 1} (${basename(inputs[i]!)}) has no video stream`);
  });
  const totalSeconds = probes.reduce((sum, p) => sum + p.durationSeconds, 0);
  const hasAudio = probes.some((p) => p.audio);
  let cpuSeconds = 0;
  const run = async (args: string[]) => {
    cpuSeconds += (await runFfmpeg(args, { signal, timeoutMs, totalSeconds, onProgress, workDir, logger })).cpuSeconds;
  };

  let strategy: MergeStrategy = mode === "auto" && compatible(probes) ? "copy" : "reencode";
  /** The concat list and links: removed again when the merge fails, so a failed run leaves only its inputs. */
  const generated: string[] = [];
  let result: ProbeResult;
  try {
    if (strategy === "copy") {
      const listPath = join(workDir, "concat.txt");
      const names = await concatNames(inputs, workDir);
      generated.push(listPath, ...names.filter((n) => n.startsWith("concat-")).map((n) => join(workDir, n)));
      await writeFile(listPath, concatList(names));
      // A copy is mostly I/O: +faststart's second pass over the whole output would cost as much again.
      const moovBytes = await moovReservation(inputs);
      try {
        try {
          await run(buildCopyArgs(listPath, output, hasAudio, moovBytes));
        } catch (error) {
          if (moovBytes === undefined || !moovReservationTooSmall(error)) throw error;
          logger?.warn({ moovBytes }, "the moov reservation was too small; copying again with +faststart");
          await run(buildCopyArgs(listPath, output, hasAudio));
        }
      } catch (error) {
        if (!(error instanceof FfmpegError)) throw error;
        logger?.warn({ err: error }, "stream copy failed; re-encoding instead");
        strategy = "reencode";
      }
    }
    if (strategy === "reencode") {
      const target = reencodeTarget(probes, options);
      logger?.debug({ target, inputs: inputs.length, totalSeconds }, "re-encoding segments");
      await run(buildReencodeArgs(inputs, probes, target, output));
    }
    // A copy's streams are the first input's, so the output needs no ffprobe (~0.1 s, as much as the copy
    // of a short clip); an encode's are whatever the encoder chose, so it is probed.
    const first = probes[0]!;
    result =
      strategy === "copy"
        ? await describeCopiedOutput(output, { video: first.video, audio: hasAudio ? first.audio : undefined }, totalSeconds, { signal })
        : await probe(output, { signal });
  } catch (error) {
    await Promise.all([output, ...generated].map((path) => rm(path, { force: true })));
    throw error;
  }
  return { strategy, probe: result, cpuSeconds };
}
