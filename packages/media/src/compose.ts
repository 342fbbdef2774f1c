import { rm } from "node:fs/promises";
import { basename, resolve } from "node:path";
import { MediaError } from "./errors";
import { fileArg, inputArgs } from "./paths";
import { probeInput, type MediaFacts } from "./facts";
import { probe, type ProbeResult } from "./probe";
import { runFfmpeg, type MediaLogger } from "./run";

export type OverlayPosition = "top-left" | "top-right" | "bottom-left" | "bottom-right" | "center" | "custom";
/**
 * background: keep the background's audio. overlay: the overlays' audio (each from its start). mix (the default):
 * both, so a presenter overlay is heard; with silent overlays it is the background's audio, copied as it was.
 */
export type ComposeAudio = "background" | "overlay" | "mix";

export interface OverlaySpec {
  /** Corner preset, centre, or custom (x/y). Default: bottom-right for the first overlay, then the other corners. */
  position?: OverlayPosition;
  /** Top-left corner of the overlay's box (border included), in background pixels; custom only. */
  x?: number;
  y?: number;
  /** Width of the overlay (without border) as a fraction of the background's width; default 0.25. */
  size?: number;
  /** When the overlay appears, seconds into the background; default 0. */
  startSeconds?: number;
  /** Radius of rounded corners in pixels; default 0 (square). */
  cornerRadius?: number;
  /** Width of a border around the overlay in pixels; default 0. */
  borderWidth?: number;
  /** Border colour: a name ("white") or #RRGGBB; default white. */
  borderColor?: string;
  /** Distance from the frame's edges for the presets, in pixels; default 2.5 % of the shorter side. */
  margin?: number;
}

export interface OverlayLayout {
  /** Box of the overlay in the output, border included. */
  x: number;
  y: number;
  width: number;
  height: number;
  /** The scaled picture inside the border. */
  innerWidth: number;
  innerHeight: number;
  border: number;
  borderColor: string;
  radius: number;
  startSeconds: number;
}

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
const DEFAULT_SIZE = 0.25;
const DEFAULT_CORNERS: OverlayPosition[] = ["bottom-right", "top-right", "bottom-left", "top-left"];
const AUDIO_RATE = 48_000;
/** Colour names and hex codes only: the value is spliced into a filter graph, where `:`/`,`/`;` would inject. */
const COLOR = /^(?:[A-Za-z]{1,32}|#[0-9A-Fa-f]{6})$/;
/** Audio an MP4 carries as it is: the background's audio is copied, not re-encoded, when it is one of these. */
const MP4_AUDIO = new Set(["aac", "mp3"]);

const even = (n: number) => Math.max(2, Math.round(n / 2) * 2);
const clamp = (n: number, lo: number, hi: number) => Math.min(Math.max(n, lo), Math.max(lo, hi));
const secs = (n: number) => n.toFixed(6);

/**
 * Where an overlay goes and how big it is, all in whole pixels computed here (so the filter graph holds
 * only numbers): its width is `size` x the background's width, its height keeps its aspect, the box
 * (border included) stays inside the frame.
 */
export function overlayLayout(
  background: { width: number; height: number },
  overlay: { width: number; height: number },
  spec: OverlaySpec = {},
  index = 0,
): OverlayLayout {
  const { width: W, height: H } = background;
  const size = spec.size ?? DEFAULT_SIZE;
  if (!(size > 0 && size <= 1)) throw new MediaError(`overlay ${index + 1}: size must be a fraction of the width, above 0 and at most 1`);
  const border = Math.max(0, Math.round(spec.borderWidth ?? 0));
  const borderColor = spec.borderColor ?? "white";
  if (!COLOR.test(borderColor)) throw new MediaError(`overlay ${index + 1}: borderColor must be a colour name or #RRGGBB`);
  const aspect = overlay.height / overlay.width;
  let innerWidth = even(W * size);
  let innerHeight = even(innerWidth * aspect);
  // A tall overlay at a large size would not fit: shrink it to the frame, keeping its aspect.
  const fit = Math.min(1, (W - 2 * border) / innerWidth, (H - 2 * border) / innerHeight);
  if (fit < 1) {
    innerWidth = even(innerWidth * fit - 1);
    innerHeight = even(innerHeight * fit - 1);
  }
  const width = innerWidth + 2 * border;
  const height = innerHeight + 2 * border;
  const margin = Math.round(spec.margin ?? Math.min(W, H) * 0.025);
  const position = spec.position ?? DEFAULT_CORNERS[index % DEFAULT_CORNERS.length]!;
  const right = W - width - margin;
  const bottom = H - height - margin;
  const [x, y]: readonly [number, number] = (
    {
      "top-left": [margin, margin],
      "top-right": [right, margin],
      "bottom-left": [margin, bottom],
      "bottom-right": [right, bottom],
      center: [(W - width) / 2, (H - height) / 2],
      custom: [spec.x ?? 0, spec.y ?? 0],
    } satisfies Record<OverlayPosition, [number, number]>
  )[position];
  const radius = Math.min(Math.max(0, Math.round(spec.cornerRadius ?? 0)), Math.floor(Math.min(width, height) / 2));
  const startSeconds = Math.max(0, spec.startSeconds ?? 0);
  return {
    x: Math.round(clamp(x, 0, W - width)),
    y: Math.round(clamp(y, 0, H - height)),
    width,
    height,
    innerWidth,
    innerHeight,
    border,
    borderColor: borderColor.startsWith("#") ? `0x${borderColor.slice(1)}` : borderColor,
    radius,
    startSeconds,
  };
}

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
