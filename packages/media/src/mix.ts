import { rm } from "node:fs/promises";
import { basename, resolve } from "node:path";
import { MediaError } from "./errors";
import { fileArg, inputArgs } from "./paths";
import { describeCopiedOutput, probeInput, type MediaFacts } from "./facts";
import { moovFrontArgs, moovReservation, moovReservationTooSmall } from "./mp4";
import { probe, type ProbeResult } from "./probe";
import { runFfmpeg, type MediaLogger } from "./run";

/** pad: the output lasts as long as the video (short audio gets silence, long audio is cut). trim: as long as the shorter. */
export type LengthMismatch = "pad" | "trim";
/** replace: the new audio is the only audio. duck: the video's own audio stays underneath at originalGain. */
export type MixMode = "replace" | "duck";

export const DEFAULT_ORIGINAL_GAIN = 0.2;
const AUDIO_RATE = 48_000;
/** Video codecs an MP4 carries as they are; anything else is encoded to H.264 (once). */
const MP4_VIDEO = new Set(["h264", "hevc", "mpeg4", "av1", "vp9"]);

export interface MixAudioOptions {
  /** Local files under names the caller generated. */
  video: string;
  audio: string;
  /** Local path of the MP4 to write. */
  output: string;
  /** A directory owned by this run (ffmpeg's cwd and pid file). */
  workDir: string;
  lengthMismatch?: LengthMismatch;
  mode?: MixMode;
  /** 0-1, duck mode only. */
  originalGain?: number;
  /** Where the new audio starts in the video (seconds); default 0. */
  startSeconds?: number;
  /** Fades of the new audio (seconds); the fade-out ends where the new audio is last heard. */
  fadeInSeconds?: number;
  fadeOutSeconds?: number;
  /** probe() of the inputs when the caller already has them. */
  probes?: { video?: ProbeResult; audio?: ProbeResult };
  /** What the inputs' producers stored about them (their node outputs): used instead of probing where complete. */
  facts?: { video?: MediaFacts; audio?: MediaFacts };
  signal?: AbortSignal;
  onProgress?: (percent: number) => void;
  timeoutMs?: number;
  logger?: MediaLogger;
}

export interface MixAudioResult {
  probe: ProbeResult;
  /** The duration the output was cut to (seconds). */
  targetSeconds: number;
  /** false when the video codec had to be encoded to H.264 to fit an MP4. */
  videoCopied: boolean;
  cpuSeconds: number;
}

export interface MixPlan {
  targetSeconds: number;
  copyVideo: boolean;
  duck: boolean;
  gain: number;
  /** Where the new audio starts in the output. */
  startSeconds: number;
  /** How much of the new audio is heard (from its start), and its fades within that, clamped to fit it. */
  heardSeconds: number;
  fadeInSeconds: number;
  fadeOutSeconds: number;
}

type PlanOptions = Pick<MixAudioOptions, "lengthMismatch" | "mode" | "originalGain" | "startSeconds" | "fadeInSeconds" | "fadeOutSeconds">;

const secs = (n: number) => n.toFixed(6);
/** The audio stream buildMixAudioArgs encodes. */
const MIXED_AUDIO = { codec: "aac", sampleRate: AUDIO_RATE, channels: 2, channelLayout: "stereo" } as const;
const audioFormat = `aresample=${AUDIO_RATE},aformat=sample_fmts=fltp:channel_layouts=stereo`;

/** Checks the streams and decides durations and codecs; throws MediaError with the reason a producer can act on. */
export function planMix(video: ProbeResult, audio: ProbeResult, options: PlanOptions): MixPlan {
  if (!video.video) throw new MediaError("the video input has no video stream");
  if (!audio.audio) throw new MediaError("the audio input has no audio stream");
  if (!(video.durationSeconds > 0)) throw new MediaError("the video input has no duration");
  if (!(audio.durationSeconds > 0)) throw new MediaError("the audio input has no duration");
  const startSeconds = options.startSeconds ?? 0;
  if (!(startSeconds >= 0)) throw new MediaError("startSeconds must be 0 or more");
  if (startSeconds >= video.durationSeconds) {
    throw new MediaError(
      `the audio would start at ${startSeconds} s, but the video lasts ${video.durationSeconds.toFixed(2)} s: choose a start offset inside the video`,
    );
  }
  const lengthMismatch = options.lengthMismatch ?? "pad";
  const audioEnd = startSeconds + audio.durationSeconds;
  const targetSeconds = lengthMismatch === "trim" ? Math.min(video.durationSeconds, audioEnd) : video.durationSeconds;
  const gain = options.originalGain ?? DEFAULT_ORIGINAL_GAIN;
  if (!(gain >= 0 && gain <= 1)) throw new MediaError("originalGain must be between 0 and 1");
  const heardSeconds = Math.min(audio.durationSeconds, targetSeconds - startSeconds);
  const fadeIn = fade(options.fadeInSeconds, "fadeInSeconds");
  const fadeOut = fade(options.fadeOutSeconds, "fadeOutSeconds");
  // Fades longer than what is heard share it in proportion, so the audio still fades fully in and out.
  const scale = fadeIn + fadeOut > heardSeconds ? heardSeconds / (fadeIn + fadeOut) : 1;
  return {
    targetSeconds,
    copyVideo: MP4_VIDEO.has(video.video.codec),
    // Nothing to duck under when the video is silent: the new audio simply replaces nothing.
    duck: (options.mode ?? "replace") === "duck" && Boolean(video.audio),
    gain,
    startSeconds,
    heardSeconds,
    fadeInSeconds: fadeIn * scale,
    fadeOutSeconds: fadeOut * scale,
  };
}

function fade(value: number | undefined, name: string): number {
  const seconds = value ?? 0;
  if (!(seconds >= 0)) throw new MediaError(`${name} must be 0 or more`);
  return seconds;
}

/** The new audio's filters before padding: its fades, then the delay that places it at startSeconds. */
function placeNewAudio(plan: MixPlan): string {
  const filters: string[] = [];
  if (plan.fadeInSeconds > 0) filters.push(`afade=t=in:st=0:d=${secs(plan.fadeInSeconds)}`);
  if (plan.fadeOutSeconds > 0) filters.push(`afade=t=out:st=${secs(plan.heardSeconds - plan.fadeOutSeconds)}:d=${secs(plan.fadeOutSeconds)}`);
  if (plan.startSeconds > 0) filters.push(`adelay=delays=${Math.round(plan.startSeconds * 1000)}:all=1`);
  return filters.map((f) => `,${f}`).join("");
}

/**
 * ffmpeg arguments for a mix: the video stream copied (or H.264 when its codec cannot go in an MP4), the
 * new audio resampled to 48 kHz stereo, faded, delayed to its start, padded with silence and cut to the
 * target, mixed over the video's own audio at `gain` in duck mode, and encoded once to AAC.
 */
export function buildMixAudioArgs(video: string, audio: string, plan: MixPlan, output: string, moovBytes?: number): string[] {
  const d = secs(plan.targetSeconds);
  const fresh = `[1:a:0]${audioFormat},asetpts=PTS-STARTPTS${placeNewAudio(plan)},apad,atrim=duration=${d},asetpts=PTS-STARTPTS`;
  const graph = plan.duck
    ? `${fresh}[new];[0:a:0]${audioFormat},volume=${plan.gain.toFixed(4)},apad,atrim=duration=${d},asetpts=PTS-STARTPTS[orig];` +
      `[new][orig]amix=inputs=2:duration=first:normalize=0[aout]`
    : `${fresh}[aout]`;
  return [
    ...inputArgs(video),
    ...inputArgs(audio),
    "-filter_complex",
    graph,
    "-map",
    "0:v:0",
    "-map",
    "[aout]",
    ...(plan.copyVideo ? ["-c:v", "copy"] : ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p"]),
    "-c:a",
    "aac",
    "-b:a",
    "192k",
    "-ar",
    String(AUDIO_RATE),
    "-ac",
    "2",
    "-t",
    d,
    // The moov at the front: into a reservation when the caller sized one (moovReservation), else a second pass.
    ...moovFrontArgs(moovBytes),
    "-f",
    "mp4",
    fileArg(output),
  ];
}

/** Replaces (or ducks) a video's audio with another audio file, writing an MP4. */
export async function mixAudio(options: MixAudioOptions): Promise<MixAudioResult> {
  const { video, audio, output, signal, onProgress, timeoutMs, logger } = options;
  const workDir = resolve(options.workDir);
  const [pv, pa] = await Promise.all([
    options.probes?.video ?? probeInput(video, options.facts?.video, { signal }),
    options.probes?.audio ?? probeInput(audio, options.facts?.audio, { signal }),
  ]);
  const plan = planMix(pv, pa, options);
  logger?.debug({ plan, video: basename(video), audio: basename(audio) }, "mixing audio");
  let cpuSeconds: number;
  let result: ProbeResult;
  try {
    const run = (moovBytes?: number) =>
      runFfmpeg(buildMixAudioArgs(video, audio, plan, output, moovBytes), { signal, timeoutMs, totalSeconds: plan.targetSeconds, onProgress, workDir, logger });
    // With the video copied, the output's sample tables are the video's plus the new AAC frames' (1024 samples each).
    const moovBytes = plan.copyVideo ? await moovReservation([video], Math.ceil((plan.targetSeconds * AUDIO_RATE) / 1024)) : undefined;
    try {
      ({ cpuSeconds } = await run(moovBytes));
    } catch (error) {
      if (moovBytes === undefined || !moovReservationTooSmall(error)) throw error;
      logger?.warn({ moovBytes }, "the moov reservation was too small; mixing again with +faststart");
      ({ cpuSeconds } = await run());
    }
    // A copied video and an audio encoded with fixed settings are known streams: no ffprobe of the output.
    result = plan.copyVideo
      ? await describeCopiedOutput(output, { video: pv.video, audio: MIXED_AUDIO }, plan.targetSeconds, { signal })
      : await probe(output, { signal });
  } catch (error) {
    await rm(output, { force: true });
    throw error;
  }
  return { probe: result, targetSeconds: plan.targetSeconds, videoCopied: plan.copyVideo, cpuSeconds };
}
