import { createHash } from "node:crypto";
import { access, copyFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { SpeechTiming } from "@vp/contracts";
import { fileArg, probe, runFfmpeg, type ProbeResult } from "@vp/media";
import { speakSentences } from "./voice";

/**
 * The local providers: real, useful stand-ins for drafting a pipeline on this machine without any API key.
 * Every file they read or write is a generated name in the job's work directory; text reaches ffmpeg only
 * through files (drawtext textfile=, expansion=none), never spliced into a filter graph.
 */

/** Fonts tried for drawtext, in order (Debian's fonts-dejavu-core / fonts-liberation). */
const FONT_CANDIDATES = [
  "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
  "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
  "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
  "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

let fontSearch: Promise<string | undefined> | undefined;
/** A TrueType font on this machine, or undefined (the cards are then drawn without text). */
export function findFont(preferred?: string): Promise<string | undefined> {
  if (preferred)
    return access(preferred).then(
      () => preferred,
      () => undefined,
    );
  fontSearch ??= (async () => {
    for (const candidate of FONT_CANDIDATES) {
      try {
        await access(candidate);
        return candidate;
      } catch {
        // next
      }
    }
    return undefined;
  })();
  return fontSearch;
}

/** Deterministic colours from text: the same text always gets the same palette. */
export function paletteOf(text: string) {
  const digest = createHash("sha256").update(text).digest();
  const hue = (i: number) => Math.round((digest.readUInt16BE(i) / 65536) * 360);
  const hex = (h: number, s: number, l: number) => hslToHex(h, s, l);
  const h0 = hue(0);
  return {
    digest,
    background: hex(h0, 0.45, 0.18),
    card: hex((h0 + 20) % 360, 0.35, 0.3),
    accent: hex((h0 + 180) % 360, 0.75, 0.6),
    colors: [0, 2, 4, 6].map((i) => hex(hue(i + 8), 0.7, 0.35 + (digest[i + 16]! / 255) * 0.3)),
    seed: digest.readUInt32BE(28),
    pick: (n: number, salt = 0) => digest[(salt * 7 + 3) % 32]! % n,
  };
}

function hslToHex(h: number, s: number, l: number): string {
  const k = (n: number) => (n + h / 30) % 12;
  const a = s * Math.min(l, 1 - l);
  const f = (n: number) => l - a * Math.max(-1, Math.min(k(n) - 3, Math.min(9 - k(n), 1)));
  return [f(0), f(8), f(4)]
    .map((v) =>
      Math.round(v * 255)
        .toString(16)
        .padStart(2, "0"),
    )
    .join("");
}

/** Up to `lines` lines of at most `width` characters, ellipsis on overflow. */
export function wrapText(text: string, width: number, lines: number): string {
  const words = text.replace(/\s+/g, " ").trim().split(" ");
  const out: string[] = [];
  let line = "";
  for (const word of words) {
    const next = line ? `${line} ${word}` : word;
    if (next.length <= width) line = next;
    else {
      if (line) out.push(line);
      line = word.slice(0, width);
    }
    if (out.length === lines) break;
  }
  if (out.length < lines && line) out.push(line);
  const joined = out.slice(0, lines);
  const used = joined.join(" ").length;
  if (used < text.replace(/\s+/g, " ").trim().length && joined.length) {
    joined[joined.length - 1] = `${joined[joined.length - 1]!.slice(0, width - 1)}…`;
  }
  return joined.join("\n");
}

export interface LocalRenderBase {
  workDir: string;
  signal?: AbortSignal;
  fontFile?: string;
  timeoutMs?: number;
}

const LABEL = "LOCAL DRAFT";

async function prepareFont(base: LocalRenderBase): Promise<boolean> {
  const font = await findFont(base.fontFile);
  if (!font) return false;
  await copyFile(font, join(base.workDir, "font.ttf"));
  return true;
}

/** drawtext of a text file written into the work directory (no escaping of user text anywhere). */
function drawText(file: string, options: string): string {
  return `drawtext=fontfile=font.ttf:textfile=${file}:expansion=none:${options}`;
}

export interface LocalVoiceoverOptions extends LocalRenderBase {
  text: string;
  voice?: string;
  speed?: number;
  pitch?: number;
}

/** The script spoken sentence by sentence into voice.wav, with when each sentence is said (measured). */
async function speakScript(options: LocalVoiceoverOptions): Promise<{ wav: string; timing: SpeechTiming }> {
  const wav = join(options.workDir, "voice.wav");
  const { text, voice, speed, pitch, signal, timeoutMs, workDir } = options;
  const timing = await speakSentences({ text, voice, speed, pitch, signal, timeoutMs, workDir, wavPath: wav });
  return { wav, timing };
}

/** espeak-ng speech, encoded as AAC in an MP4 audio file (voice.m4a), and when each sentence is said in it. */
export async function renderLocalVoiceover(options: LocalVoiceoverOptions): Promise<{ path: string; probe: ProbeResult; timing: SpeechTiming }> {
  const { wav, timing } = await speakScript(options);
  const out = join(options.workDir, "voice.m4a");
  await runFfmpeg(
    [
      "-protocol_whitelist",
      "file",
      "-f",
      "wav",
      "-i",
      fileArg(wav),
      "-c:a",
      "aac",
      "-b:a",
      "96k",
      "-ar",
      "44100",
      "-ac",
      "1",
      "-movflags",
      "+faststart",
      "-f",
      "mp4",
      fileArg(out),
    ],
    { signal: options.signal, workDir: options.workDir, timeoutMs: options.timeoutMs },
  );
  return { path: out, probe: await probe(out, { signal: options.signal }), timing };
}

export interface LocalTalkingHeadOptions extends LocalVoiceoverOptions {
  title: string;
  width?: number;
  height?: number;
  onProgress?: (percent: number) => void;
}

/**
 * A presenter card: the node title on a card in colours derived from it, a drawn avatar tile with the title's
 * initials, the voice's waveform below, a "LOCAL DRAFT" label, and the espeak-ng voiceover as the sound track.
 */
export async function renderLocalTalkingHead(options: LocalTalkingHeadOptions): Promise<{ path: string; probe: ProbeResult; timing: SpeechTiming }> {
  const W = options.width ?? 640;
  const H = options.height ?? 360;
  const { wav, timing } = await speakScript(options);
  const seconds = (await probe(wav, { signal: options.signal })).durationSeconds + 0.3;
  const fonts = await prepareFont(options);
  await writeCardTexts(options.workDir, options.title);
  const p = paletteOf(options.title);
  const graph = presenterGraph(W, H, p, fonts);
  const out = join(options.workDir, "talking-head.mp4");
  await runFfmpeg(
    [
      "-f",
      "lavfi",
      "-i",
      `color=c=0x${p.background}:s=${W}x${H}:r=25:d=${seconds.toFixed(2)}`,
      "-protocol_whitelist",
      "file",
      "-f",
      "wav",
      "-i",
      fileArg(wav),
      "-filter_complex",
      graph,
      "-map",
      "[v]",
      "-map",
      "1:a",
      "-c:v",
      "libx264",
      "-preset",
      "ultrafast",
      "-pix_fmt",
      "yuv420p",
      "-c:a",
      "aac",
      "-b:a",
      "96k",
      "-ac",
      "1",
      "-t",
      seconds.toFixed(2),
      "-movflags",
      "+faststart",
      "-f",
      "mp4",
      fileArg(out),
    ],
    { signal: options.signal, workDir: options.workDir, totalSeconds: seconds, onProgress: options.onProgress, timeoutMs: options.timeoutMs },
  );
  return { path: out, probe: await probe(out, { signal: options.signal }), timing };
}

/** The card's texts, as files drawtext reads (the title wrapped, its initials, the label). */
async function writeCardTexts(workDir: string, title: string): Promise<void> {
  const initials =
    title
      .split(/\s+/)
      .filter(Boolean)
      .slice(0, 2)
      .map((w) => [...w][0]!.toUpperCase())
      .join("") || "AI";
  await writeFile(join(workDir, "title.txt"), wrapText(title, 28, 2));
  await writeFile(join(workDir, "initials.txt"), initials);
  await writeFile(join(workDir, "label.txt"), LABEL);
}

/** The presenter card's filter graph: input 0 the background colour, input 1 the voice; out [v]. */
function presenterGraph(W: number, H: number, p: ReturnType<typeof paletteOf>, fonts: boolean): string {
  const pad = Math.round(W * 0.06);
  const tile = Math.round(H * 0.36);
  const card = { x: pad, y: pad, w: W - 2 * pad, h: tile + 2 * Math.round(pad / 2) };
  const tileX = card.x + Math.round(pad / 2);
  const tileY = card.y + Math.round(pad / 2);
  const waves = { w: W - 2 * pad, h: Math.round(H * 0.3), x: pad, y: H - pad - Math.round(H * 0.3) };
  const fs = Math.max(12, Math.round(H / 14));
  const text = fonts
    ? [
        drawText("initials.txt", `fontsize=${Math.round(tile / 2.4)}:fontcolor=0x${p.background}:x=${tileX}+(${tile}-text_w)/2:y=${tileY}+(${tile}-text_h)/2`),
        drawText(
          "title.txt",
          `fontsize=${fs}:line_spacing=${Math.round(fs / 3)}:fontcolor=white:x=${tileX + tile + pad}:y=${tileY + Math.round(tile / 2 - fs)}`,
        ),
        drawText("label.txt", `fontsize=${Math.max(10, Math.round(H / 28))}:fontcolor=white@0.9:box=1:boxcolor=black@0.45:boxborderw=6:x=w-text_w-12:y=12`),
      ]
    : [];
  const video = [
    `drawbox=x=${card.x}:y=${card.y}:w=${card.w}:h=${card.h}:color=0x${p.card}@0.9:t=fill`,
    `drawbox=x=${tileX}:y=${tileY}:w=${tile}:h=${tile}:color=0x${p.accent}:t=fill`,
    ...text,
  ].join(",");
  return [
    `[1:a]aformat=channel_layouts=mono,showwaves=s=${waves.w}x${waves.h}:mode=cline:rate=25:colors=0x${p.accent},format=yuva420p[w]`,
    `[0:v]${video}[bg]`,
    `[bg][w]overlay=x=${waves.x}:y=${waves.y}:format=auto,format=yuv420p[v]`,
  ].join(";");
}

export interface LocalAnimationOptions extends LocalRenderBase {
  prompt: string;
  durationSeconds: number;
  aspectRatio?: "16:9" | "9:16";
  /** First frame for image-to-video: a generated name in workDir, and the demuxer its probe found. */
  image?: { path: string; format: "png_pipe" | "jpeg_pipe" | "webp_pipe" };
  onProgress?: (percent: number) => void;
}

export const ANIMATION_PATTERNS = ["gradients", "life", "cellauto"] as const;
/** Elementary cellular automaton rules that make lively patterns. */
const RULES = [30, 45, 73, 90, 105, 110, 150, 18] as const;

/** Which pattern and parameters a prompt gets (exported for tests and the docs). */
export function animationLook(prompt: string) {
  const p = paletteOf(prompt.trim().toLowerCase());
  return { palette: p, pattern: ANIMATION_PATTERNS[p.pick(ANIMATION_PATTERNS.length)]! };
}

/**
 * The prompt's pattern as a lavfi source of W x H at 25 fps lasting d seconds, and the filters that colour it
 * (the automaton is black and white: its cells are scaled up and the live ones tinted with the prompt's colour).
 */
function patternSource(prompt: string, W: number, H: number, d: number): { source: string; hue: string[] } {
  const { palette: p, pattern } = animationLook(prompt);
  const [c0, c1, c2, c3] = p.colors as [string, string, string, string];
  const size = `s=${W}x${H}:r=25`;
  if (pattern === "gradients") {
    const speed = (0.01 + p.pick(10, 1) / 400).toFixed(4);
    return { source: `gradients=${size}:d=${d}:c0=0x${c0}:c1=0x${c1}:c2=0x${c2}:c3=0x${c3}:nb_colors=4:seed=${p.seed}:speed=${speed}`, hue: [] };
  }
  if (pattern === "life") {
    const ratio = (0.2 + p.pick(5, 2) / 20).toFixed(2);
    return { source: `life=${size}:seed=${p.seed}:ratio=${ratio}:mold=10:life_color=0x${c0}:death_color=0x${p.background}:mold_color=0x${c2}`, hue: [] };
  }
  const channel = (i: number) => (parseInt(c0.slice(i, i + 2), 16) / 255).toFixed(3);
  return {
    source: `cellauto=s=${W / 4}x${H / 4}:r=25:rule=${RULES[p.pick(RULES.length, 3)]}:seed=${p.seed}:random_fill_ratio=0.5:scroll=1`,
    hue: [`scale=${W}:${H}:flags=neighbor,format=gbrp,colorchannelmixer=rr=${channel(0)}:gg=${channel(2)}:bb=${channel(4)}`],
  };
}

/**
 * An animation whose look follows the prompt deterministically: the prompt's hash picks the pattern (moving
 * gradients, a game of life, a scrolling cellular automaton), its colours and seed; the prompt is written across
 * the bottom.
 * With an image, the image is the first frame, slowly zoomed, with the pattern blended over it.
 * A silent stereo track keeps it mergeable with clips that have sound.
 */
export async function renderLocalAnimation(options: LocalAnimationOptions): Promise<{ path: string; probe: ProbeResult }> {
  const [W, H] = options.aspectRatio === "9:16" ? [360, 640] : [640, 360];
  const d = Math.max(1, Math.min(60, options.durationSeconds));
  const frames = Math.round(d * 25);
  const { source, hue } = patternSource(options.prompt, W, H, d);
  const fonts = await prepareFont(options);
  await writeFile(join(options.workDir, "prompt.txt"), wrapText(options.prompt, W > H ? 48 : 26, 2));
  await writeFile(join(options.workDir, "label.txt"), LABEL);
  const fs = Math.max(12, Math.round(Math.min(W, H) / 20));
  const text = fonts
    ? [
        drawText(
          "prompt.txt",
          `fontsize=${fs}:line_spacing=${Math.round(fs / 3)}:fontcolor=white:box=1:boxcolor=black@0.5:boxborderw=10:x=(w-text_w)/2:y=h-text_h-${Math.round(H / 10)}`,
        ),
        drawText(
          "label.txt",
          `fontsize=${Math.max(10, Math.round(Math.min(W, H) / 28))}:fontcolor=white@0.9:box=1:boxcolor=black@0.45:boxborderw=6:x=w-text_w-12:y=12`,
        ),
      ]
    : [];
  const inputs = ["-f", "lavfi", "-i", source];
  let graph: string;
  if (options.image) {
    inputs.push("-protocol_whitelist", "file", "-f", options.image.format, "-loop", "1", "-i", fileArg(options.image.path));
    graph = [
      `[0:v]trim=end_frame=${frames},setpts=N/25/TB${hue.length ? `,${hue[0]}` : ""},format=yuv420p[pat]`,
      `[1:v]scale=${W}:${H}:force_original_aspect_ratio=increase,crop=${W}:${H},setsar=1,zoompan=z='min(1+0.0008*on,1.25)':x='iw/2-iw/zoom/2':y='ih/2-ih/zoom/2':d=1:s=${W}x${H}:fps=25,trim=end_frame=${frames},format=yuv420p[img]`,
      `[img][pat]blend=all_mode=overlay:all_opacity=0.35${text.length ? `,${text.join(",")}` : ""},format=yuv420p[v]`,
    ].join(";");
  } else {
    graph = `[0:v]${[`trim=end_frame=${frames}`, ...hue, "format=yuv420p", ...text, "format=yuv420p"].join(",")}[v]`;
  }
  const audioIndex = options.image ? 2 : 1;
  const out = join(options.workDir, "animation.mp4");
  await runFfmpeg(
    [
      ...inputs,
      "-f",
      "lavfi",
      "-i",
      `anullsrc=r=48000:cl=stereo`,
      "-filter_complex",
      graph,
      "-map",
      "[v]",
      "-map",
      `${audioIndex}:a`,
      "-c:v",
      "libx264",
      "-preset",
      "ultrafast",
      "-pix_fmt",
      "yuv420p",
      "-r",
      "25",
      "-c:a",
      "aac",
      "-b:a",
      "64k",
      "-t",
      String(d),
      "-movflags",
      "+faststart",
      "-f",
      "mp4",
      fileArg(out),
    ],
    { signal: options.signal, workDir: options.workDir, totalSeconds: d, onProgress: options.onProgress, timeoutMs: options.timeoutMs },
  );
  return { path: out, probe: await probe(out, { signal: options.signal }) };
}
