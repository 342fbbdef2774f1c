import { rm } from "node:fs/promises";
import { basename, resolve } from "node:path";
import { MediaError } from "./errors";
import { fileArg, inputArgs } from "./paths";
import { probeInput, type MediaFacts } from "./facts";
import { probe, type ProbeResult } from "./probe";
import { runFfmpeg, type MediaLogger } from "./run";
import { overlayLayout, type OverlayLayout, type OverlaySpec } from "./layout";

/**
 * background: keep the background's audio. overlay: the overlays' audio (each from its start). mix (the default):
 * both, so a presenter overlay is heard; with silent overlays it is the background's audio, copied as it was.
 */
export type ComposeAudio = "background" | "overlay" | "mix";

export interface ComposeVideoOptions {
  /** Local files under names the caller generated. */
  background: string;
  overlays: readonly string[];
  /** One spec per overlay, by index; missing entries use the defaults. */
  specs?: readonly OverlaySpec[];
  audio?: ComposeAudio;
  /** Local path of the MP4 to write. */
  output: string;
  /** A directory owned by this run (ffmpeg's cwd and pid file). */
  workDir: string;
  probes?: { background?: ProbeResult; overlays?: readonly (ProbeResult | undefined)[] };
  /** What the inputs' producers stored about them (their node outputs): used instead of probing where complete. */
  facts?: { background?: MediaFacts; overlays?: readonly (MediaFacts | undefined)[] };
  signal?: AbortSignal;
  onProgress?: (percent: number) => void;
  timeoutMs?: number;
  logger?: MediaLogger;
}

export interface ComposeVideoResult {
  probe: ProbeResult;
  layouts: OverlayLayout[];
  cpuSeconds: number;
}

export const MAX_OVERLAYS = 8;
const AUDIO_RATE = 48_000;
/** Audio an MP4 carries as it is: the background's audio is copied, not re-encoded, when it is one of these. */
const MP4_AUDIO = new Set(["aac", "mp3"]);

const secs = (n: number) => n.toFixed(6);

/** An alpha mask (white inside, black outside a rounded rectangle), computed once as a single frame. */
function roundedMask(l: OverlayLayout, label: string): string {
  const r = l.radius;
  const right = l.width - 1 - r;
  const bottom = l.height - 1 - r;
  // Commas inside a filter argument are escaped; every value is a number computed above.
  const dx = `max(0\\,max(${r}-X\\,X-${right}))`;
  const dy = `max(0\\,max(${r}-Y\\,Y-${bottom}))`;
  return `color=c=black:s=${l.width}x${l.height}:r=1:d=1,format=gray,geq=lum='255*lte(${dx}*${dx}+${dy}*${dy}\\,${r * r})'[${label}]`;
}

/**
 * ffmpeg arguments for a composite: each overlay scaled to its box, bordered, given rounded corners (a
 * one-frame alpha mask), shifted to its start time and laid over the background, which passes through
 * where an overlay has ended. Size, rate and duration are the background's; video is encoded once to H.264.
 */
export function buildComposeArgs(
  background: string,
  overlays: readonly string[],
  probes: { background: ProbeResult; overlays: readonly ProbeResult[] },
  layouts: readonly OverlayLayout[],
  audio: ComposeAudio,
  output: string,
): string[] {
  const duration = probes.background.durationSeconds;
  const chains: string[] = [];
  let base = "0:v:0";
  layouts.forEach((l, i) => {
    const input = i + 1;
    let chain = `[${input}:v:0]setpts=PTS-STARTPTS,scale=${l.innerWidth}:${l.innerHeight},setsar=1`;
    if (l.border > 0) chain += `,pad=${l.width}:${l.height}:${l.border}:${l.border}:color=${l.borderColor}`;
    if (l.radius > 0) {
      chains.push(roundedMask(l, `mask${i}`));
      chain += `,format=yuva420p[shape${i}];[shape${i}][mask${i}]alphamerge`;
    }
    chain += `,setpts=PTS+${secs(l.startSeconds)}/TB[ov${i}]`;
    chains.push(chain);
    const out = i === layouts.length - 1 ? "vout" : `base${i}`;
    chains.push(`[${base}][ov${i}]overlay=x=${l.x}:y=${l.y}:eof_action=pass[${out}]`);
    base = out;
  });

  // Audio sources: the background's and/or each overlay's from its start time.
  const backgroundAudio = audio !== "overlay" && probes.background.audio ? [0] : [];
  const overlayAudio = audio !== "background" ? layouts.map((_, i) => i).filter((i) => probes.overlays[i]?.audio) : [];
  let audioArgs: string[] = [];
  const copyBackgroundAudio = backgroundAudio.length === 1 && overlayAudio.length === 0 && MP4_AUDIO.has(probes.background.audio!.codec);
  if (copyBackgroundAudio) {
    audioArgs = ["-map", "0:a:0", "-c:a", "copy"];
  } else if (backgroundAudio.length + overlayAudio.length > 0) {
    const labels: string[] = [];
    const fmt = `aresample=${AUDIO_RATE},aformat=sample_fmts=fltp:channel_layouts=stereo`;
    for (const _ of backgroundAudio) {
      chains.push(`[0:a:0]${fmt},asetpts=PTS-STARTPTS[abg]`);
      labels.push("[abg]");
    }
    for (const i of overlayAudio) {
      const delayMs = Math.round(layouts[i]!.startSeconds * 1000);
      chains.push(`[${i + 1}:a:0]${fmt},asetpts=PTS-STARTPTS${delayMs > 0 ? `,adelay=delays=${delayMs}:all=1` : ""}[aov${i}]`);
      labels.push(`[aov${i}]`);
    }
    const mix = labels.length > 1 ? `amix=inputs=${labels.length}:duration=longest:normalize=0,` : "";
    // Silence where no source plays, cut to the background's duration.
    chains.push(`${labels.join("")}${mix}apad,atrim=duration=${secs(duration)}[aout]`);
    audioArgs = ["-map", "[aout]", "-c:a", "aac", "-b:a", "192k", "-ar", String(AUDIO_RATE), "-ac", "2"];
  }

  return [
    ...inputArgs(background),
    ...overlays.flatMap((o) => inputArgs(o)),
    "-filter_complex",
    chains.join(";"),
    "-map",
    "[vout]",
    ...audioArgs,
    "-c:v",
    "libx264",
    "-preset",
    "veryfast",
    "-crf",
    "20",
    "-pix_fmt",
    "yuv420p",
    "-t",
    secs(duration),
    "-movflags",
    "+faststart",
    "-f",
    "mp4",
    fileArg(output),
  ];
}

/** Lays one or more overlay videos over a background video (picture in picture), writing an MP4. */
export async function composeVideo(options: ComposeVideoOptions): Promise<ComposeVideoResult> {
  const { background, overlays, signal, onProgress, timeoutMs, logger, output } = options;
  const workDir = resolve(options.workDir);
  if (overlays.length === 0) throw new MediaError("compose-video needs at least one overlay");
  if (overlays.length > MAX_OVERLAYS) throw new MediaError(`compose-video takes at most ${MAX_OVERLAYS} overlays`);
  if (options.probes?.overlays && options.probes.overlays.length !== overlays.length) throw new MediaError("probes must match overlays one to one");
  if (options.facts?.overlays && options.facts.overlays.length !== overlays.length) throw new MediaError("facts must match overlays one to one");
  const [pb, ...po] = await Promise.all([
    options.probes?.background ?? probeInput(background, options.facts?.background, { signal }),
    ...overlays.map((o, i) => options.probes?.overlays?.[i] ?? probeInput(o, options.facts?.overlays?.[i], { signal })),
  ]);
  const bg = pb!.video;
  if (!bg) throw new MediaError("the background has no video stream");
  if (!(pb!.durationSeconds > 0)) throw new MediaError("the background has no duration");
  const layouts = po.map((p, i) => {
    if (!p.video) throw new MediaError(`overlay ${i + 1} has no video stream`);
    return overlayLayout(bg, p.video, options.specs?.[i], i);
  });
  logger?.debug({ layouts, background: basename(background), overlays: overlays.length }, "composing");
  let cpuSeconds: number;
  try {
    ({ cpuSeconds } = await runFfmpeg(buildComposeArgs(background, overlays, { background: pb!, overlays: po }, layouts, options.audio ?? "mix", output), {
      signal,
      timeoutMs,
      totalSeconds: pb!.durationSeconds,
      onProgress,
      workDir,
      logger,
    }));
  } catch (error) {
    await rm(output, { force: true });
    throw error;
  }
  return { probe: await probe(output, { signal }), layouts, cpuSeconds };
}
