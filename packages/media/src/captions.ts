import { randomUUID } from "node:crypto";
import { rm, writeFile } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { MediaError } from "./errors";
import { fileArg, inputArgs } from "./paths";
import { probe as probeFile, type ProbeResult } from "./probe";
import { runFfmpeg, type MediaLogger } from "./run";

/**
 * One caption: `text` shown from `start` to `end`, in seconds from the start of the video. The same shape as
 * TimedText in @vp/contracts (a voiceover's sentence timing), declared here so media depends on no contract.
 */
export interface Cue {
  start: number;
  end: number;
  text: string;
}

export type CaptionPosition = "bottom" | "top" | "center";

export interface CaptionStyle {
  /** Font size in pixels of the video's height; default about 5 % of the height (less where a full line would not fit the width). */
  fontSize?: number;
  /** Where the captions sit, horizontally centred; default bottom. */
  position?: CaptionPosition;
  /** #RRGGBB; default white. */
  textColor?: string;
  /** #RRGGBB of the outline around the letters; default black. Not drawn when backgroundColor is set. */
  outlineColor?: string;
  /** #RRGGBB of an opaque box behind each line; none when unset. */
  backgroundColor?: string;
  /** Lines are wrapped at this many characters; default 42. */
  maxCharsPerLine?: number;
}

export interface BurnCaptionsOptions {
  /** Local file under a name the caller generated. */
  video: string;
  cues: readonly Cue[];
  /** Local path of the MP4 to write. */
  output: string;
  /** A directory owned by this run (ffmpeg's cwd and pid file, the generated subtitle file). */
  workDir: string;
  style?: CaptionStyle;
  /** probe() of the video when the caller already has it. */
  probe?: ProbeResult;
  signal?: AbortSignal;
  onProgress?: (percent: number) => void;
  timeoutMs?: number;
  logger?: MediaLogger;
}

export interface BurnCaptionsResult {
  probe: ProbeResult;
  cpuSeconds: number;
  /** The cues as shown (layoutCues): at most two lines each, lines joined by "\n". */
  cues: Cue[];
}

export const DEFAULT_MAX_CHARS_PER_LINE = 42;
/** Lines one displayed caption holds; a longer cue is shown as several captions in turn. */
export const MAX_CAPTION_LINES = 2;
/** fonts-dejavu-core: on every Debian with ffmpeg (fontconfig-config depends on it). */
export const CAPTION_FONT = "DejaVu Sans";

const COLOR = /^#[0-9A-Fa-f]{6}$/;
const ALIGNMENT: Record<CaptionPosition, number> = { bottom: 2, top: 8, center: 5 };
/** Audio an MP4 carries as it is: copied, anything else encoded to AAC. */
const MP4_AUDIO = new Set(["aac", "mp3"]);
/** Average advance of a DejaVu Sans character as a fraction of the ASS font size, for fitting a full line into the width. */
const CHAR_WIDTH = 0.55;

const segmenter = new Intl.Segmenter(undefined, { granularity: "grapheme" });
/** User-perceived characters, so a line is never cut inside an emoji or an accented letter. */
const graphemes = (s: string): string[] => Array.from(segmenter.segment(s), (g) => g.segment);
const round3 = (n: number) => Math.round(n * 1000) / 1000;

function checkMaxChars(maxCharsPerLine: number): number {
  if (!Number.isInteger(maxCharsPerLine) || maxCharsPerLine < 1 || maxCharsPerLine > 1000) {
    throw new MediaError("maxCharsPerLine must be a whole number from 1 to 1000");
  }
  return maxCharsPerLine;
}

/**
 * Caption text as every output shows it: one paragraph (line breaks and other white space become single
 * spaces, other control characters go), and no `-->`, which would start a new cue in WebVTT and SRT.
 */
function cleanCaptionText(text: string): string {
  return text
    .replace(/\s+/g, " ")
    .replace(/\p{Cc}/gu, "")
    .replace(/-{2,}>/g, "->")
    .trim();
}

/**
 * Greedy word wrap into lines of at most `maxCharsPerLine` characters; a word longer than a line is cut into
 * line-sized pieces. Wrapping its own output joined again gives the same lines.
 */
export function wrapCaption(text: string, maxCharsPerLine: number = DEFAULT_MAX_CHARS_PER_LINE): string[] {
  const max = checkMaxChars(maxCharsPerLine);
  const lines: string[] = [];
  let line = "";
  let length = 0;
  for (const word of cleanCaptionText(text).split(" ")) {
    if (!word) continue;
    const chars = graphemes(word);
    if (line && length + 1 + chars.length <= max) {
      line += ` ${word}`;
      length += 1 + chars.length;
      continue;
    }
    if (line) lines.push(line);
    let rest = chars;
    while (rest.length > max) {
      lines.push(rest.slice(0, max).join(""));
      rest = rest.slice(max);
    }
    line = rest.join("");
    length = rest.length;
  }
  if (line) lines.push(line);
  return lines;
}

function checkCue(cue: Cue, index: number): void {
  const seconds = (n: unknown) => typeof n === "number" && Number.isFinite(n) && n >= 0;
  if (!cue || typeof cue.text !== "string") throw new MediaError(`cue ${index + 1} has no text`);
  if (!seconds(cue.start) || !seconds(cue.end)) throw new MediaError(`cue ${index + 1}: start and end must be seconds, 0 or more`);
  if (cue.end < cue.start) throw new MediaError(`cue ${index + 1} ends before it starts`);
}

/**
 * The cues as displayed, in order of start: each wrapped (wrapCaption), and one that needs more than two lines
 * split into consecutive cues of two lines over its time, in proportion to their characters. Cues without
 * text or without duration show nothing and are left out. Burned-in captions and sidecars both come from this,
 * so they show the same captions; laying out its own output changes nothing.
 */
export function layoutCues(cues: readonly Cue[], maxCharsPerLine: number = DEFAULT_MAX_CHARS_PER_LINE): Cue[] {
  const max = checkMaxChars(maxCharsPerLine);
  cues.forEach(checkCue);
  const laidOut: Cue[] = [];
  // Array.prototype.sort is stable: cues that start together keep their order.
  for (const cue of [...cues].sort((a, b) => a.start - b.start)) {
    const lines = wrapCaption(cue.text, max);
    if (lines.length === 0 || cue.end <= cue.start) continue;
    const groups: string[][] = [];
    for (let i = 0; i < lines.length; i += MAX_CAPTION_LINES) groups.push(lines.slice(i, i + MAX_CAPTION_LINES));
    const weights = groups.map((g) => g.reduce((n, l) => n + graphemes(l).length, 0));
    const total = weights.reduce((a, b) => a + b, 0);
    let done = 0;
    let start = cue.start;
    groups.forEach((group, i) => {
      done += weights[i]!;
      const end = i === groups.length - 1 ? cue.end : round3(cue.start + ((cue.end - cue.start) * done) / total);
      // Only a cue a few milliseconds long can leave a part no time after rounding; there is nothing to show of it.
      if (end > start) laidOut.push({ start, end, text: group.join("\n") });
      start = end;
    });
  }
  return laidOut;
}

const pad = (n: number, width: number) => String(n).padStart(width, "0");

/** HH:MM:SS.mmm (WebVTT) or HH:MM:SS,mmm (SRT). */
function clock(seconds: number, separator: "." | ","): string {
  const ms = Math.round(seconds * 1000);
  return `${pad(Math.floor(ms / 3_600_000), 2)}:${pad(Math.floor(ms / 60_000) % 60, 2)}:${pad(Math.floor(ms / 1000) % 60, 2)}${separator}${pad(ms % 1000, 3)}`;
}

/** `<` and `&` would open a tag or an entity in WebVTT cue text; `>` is escaped too so no `-->` can appear. */
const vttLine = (line: string) => line.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");

/** A WebVTT file of the cues as layoutCues shows them. */
export function captionsToWebVtt(cues: readonly Cue[], maxCharsPerLine: number = DEFAULT_MAX_CHARS_PER_LINE): string {
  const blocks = layoutCues(cues, maxCharsPerLine).map(
    (c) => `\n${clock(c.start, ".")} --> ${clock(c.end, ".")}\n${c.text.split("\n").map(vttLine).join("\n")}\n`,
  );
  return `WEBVTT\n${blocks.join("")}`;
}

/** An SRT file of the cues as layoutCues shows them, numbered from 1. */
export function captionsToSrt(cues: readonly Cue[], maxCharsPerLine: number = DEFAULT_MAX_CHARS_PER_LINE): string {
  return layoutCues(cues, maxCharsPerLine)
    .map((c, i) => `${i + 1}\n${clock(c.start, ",")} --> ${clock(c.end, ",")}\n${c.text}\n`)
    .join("\n");
}

interface AssStyle {
  fontSize: number;
  alignment: number;
  marginX: number;
  marginY: number;
  primary: string;
  outline: string;
  back: string;
  borderStyle: 1 | 3;
  outlineWidth: number;
  maxCharsPerLine: number;
}

/** #RRGGBB -> ASS &HAABBGGRR, opaque. */
function assColor(hex: string): string {
  return `&H00${hex.slice(5, 7)}${hex.slice(3, 5)}${hex.slice(1, 3)}`.toUpperCase();
}

/** Checks a style and fills in the defaults for a frame size; MediaError names the bad field. */
function resolveStyle(style: CaptionStyle, size: { width: number; height: number }): AssStyle {
  const position = style.position ?? "bottom";
  if (!Object.hasOwn(ALIGNMENT, position)) throw new MediaError(`caption position must be bottom, top or center, not ${JSON.stringify(position)}`);
  const maxCharsPerLine = checkMaxChars(style.maxCharsPerLine ?? DEFAULT_MAX_CHARS_PER_LINE);
  const color = (name: "textColor" | "outlineColor" | "backgroundColor", fallback: string | undefined): string | undefined => {
    const value = style[name] ?? fallback;
    if (value !== undefined && (typeof value !== "string" || !COLOR.test(value))) {
      throw new MediaError(`caption ${name} must be a colour written #RRGGBB, not ${JSON.stringify(value)}`);
    }
    return value;
  };
  const text = color("textColor", "#FFFFFF")!;
  const outline = color("outlineColor", "#000000")!;
  const background = color("backgroundColor", undefined);
  const marginX = Math.round(size.width * 0.05);
  const marginY = Math.round(size.height * 0.05);
  let fontSize: number;
  if (style.fontSize !== undefined) {
    if (!(typeof style.fontSize === "number" && style.fontSize > 0 && style.fontSize <= size.height)) {
      throw new MediaError(`caption fontSize must be a number of pixels above 0 and at most the video's height (${size.height})`);
    }
    fontSize = Math.max(1, Math.round(style.fontSize));
  } else {
    const fitsWidth = (size.width - 2 * marginX) / (maxCharsPerLine * CHAR_WIDTH);
    fontSize = Math.max(1, Math.round(Math.min(size.height * 0.05, fitsWidth)));
  }
  // BorderStyle 3 draws an opaque box in the outline colour (libass also uses the back colour for it): the box
  // replaces the outline, and its outline width is the padding around the letters.
  return {
    fontSize,
    alignment: ALIGNMENT[position],
    marginX,
    marginY,
    primary: assColor(text),
    outline: assColor(background ?? outline),
    back: assColor(background ?? outline),
    borderStyle: background ? 3 : 1,
    outlineWidth: background ? Math.max(2, Math.round(fontSize / 6)) : Math.max(1, Math.round(fontSize / 18)),
    maxCharsPerLine,
  };
}

/** H:MM:SS.cc, ASS's centiseconds. */
function assTime(seconds: number): string {
  const cs = Math.round(seconds * 100);
  return `${Math.floor(cs / 360_000)}:${pad(Math.floor(cs / 6000) % 60, 2)}:${pad(Math.floor(cs / 100) % 60, 2)}.${pad(cs % 100, 2)}`;
}

/**
 * One line of cue text as literal ASS text. Braces would open an override block (`{\fs200}`): libass reads
 * `\{` and `\}` as the characters themselves. A backslash before N, n or h would be a line break or a hard
 * space, and ASS has no escape for a backslash: that one is shown as U+2216 (∖), which looks the same.
 */
function assLine(line: string): string {
  return line.replace(/\\(?=[Nnh])/g, "\u2216").replace(/[{}]/g, "\\$&");
}

function assDocument(cues: readonly Cue[], size: { width: number; height: number }, s: AssStyle): string {
  const lines = [
    "[Script Info]",
    "ScriptType: v4.00+",
    // Play resolution = frame size: font size, margins and outline are in video pixels.
    `PlayResX: ${size.width}`,
    `PlayResY: ${size.height}`,
    // Lines are broken by layoutCues; libass breaks further only a line wider than the frame (a large fontSize).
    "WrapStyle: 1",
    "ScaledBorderAndShadow: yes",
    // Colours exactly as given, with no BT.601/BT.709 conversion.
    "YCbCr Matrix: None",
    "",
    "[V4+ Styles]",
    "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding",
    `Style: Default,${CAPTION_FONT},${s.fontSize},${s.primary},${s.primary},${s.outline},${s.back},0,0,0,0,100,100,0,0,${s.borderStyle},${s.outlineWidth},0,${s.alignment},${s.marginX},${s.marginX},${s.marginY},1`,
    "",
    "[Events]",
    "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text",
    ...cues.map((c) => `Dialogue: 0,${assTime(c.start)},${assTime(c.end)},Default,,0,0,0,,${c.text.split("\n").map(assLine).join("\\N")}`),
  ];
  return `${lines.join("\n")}\n`;
}

/** An ASS subtitle file of the cues as layoutCues shows them, styled for a frame of `size` pixels. */
export function captionsToAss(cues: readonly Cue[], size: { width: number; height: number }, style: CaptionStyle = {}): string {
  const s = resolveStyle(style, size);
  return assDocument(layoutCues(cues, s.maxCharsPerLine), size, s);
}

/**
 * A value for one option of a filter inside a filtergraph (`-vf`), quoted for ffmpeg's two parsers: the
 * option parser (`\`, `'`, `:`), then the graph parser (`\`, `'`, `[`, `]`, `,`, `;`). White space is escaped
 * at both levels, which would otherwise trim it from the ends.
 */
export function escapeFilterValue(value: string): string {
  return value.replace(/[\\':\s]/g, "\\$&").replace(/[\\'[\],;\s]/g, "\\$&");
}

/**
 * ffmpeg arguments that burn a generated subtitle file into a video: libass renders it over each frame, the
 * video is encoded once to H.264 (same size and rate), the audio copied (or AAC where an MP4 cannot carry it).
 * The filter names only the subtitle file's path: no caption text is ever an argument.
 */
export function buildBurnCaptionsArgs(video: string, subtitlesFile: string, input: ProbeResult, output: string): string[] {
  const audio = input.audio ? ["-map", "0:a:0", ...(MP4_AUDIO.has(input.audio.codec) ? ["-c:a", "copy"] : ["-c:a", "aac", "-b:a", "192k"])] : [];
  return [
    ...inputArgs(video),
    "-map",
    "0:v:0",
    ...audio,
    "-vf",
    `subtitles=filename=${escapeFilterValue(fileArg(subtitlesFile))}`,
    "-c:v",
    "libx264",
    "-preset",
    "veryfast",
    "-crf",
    "20",
    "-pix_fmt",
    "yuv420p",
    "-movflags",
    "+faststart",
    "-f",
    "mp4",
    fileArg(output),
  ];
}

/** Burns captions into a video (libass over each frame), writing an MP4 of the same size, rate and duration. */
export async function burnCaptions(options: BurnCaptionsOptions): Promise<BurnCaptionsResult> {
  const { video, output, signal, onProgress, timeoutMs, logger } = options;
  const workDir = resolve(options.workDir);
  const input = options.probe ?? (await probeFile(video, { signal }));
  const frame = input.video;
  if (!frame) throw new MediaError("the video input has no video stream");
  if (!(frame.width > 0 && frame.height > 0)) throw new MediaError("the video input has no frame size");
  if (!(input.durationSeconds > 0)) throw new MediaError("the video input has no duration");
  const style = resolveStyle(options.style ?? {}, frame);
  const cues = layoutCues(options.cues, style.maxCharsPerLine);
  const subtitlesFile = join(workDir, `captions-${randomUUID()}.ass`);
  logger?.debug({ cues: cues.length, fontSize: style.fontSize, video: basename(video) }, "burning captions");
  let cpuSeconds: number;
  let result: ProbeResult;
  try {
    await writeFile(subtitlesFile, assDocument(cues, frame, style), { flag: "wx" });
    ({ cpuSeconds } = await runFfmpeg(buildBurnCaptionsArgs(video, subtitlesFile, input, output), {
      signal,
      timeoutMs,
      totalSeconds: input.durationSeconds,
      onProgress,
      workDir,
      logger,
    }));
    result = await probeFile(output, { signal });
  } catch (error) {
    await rm(output, { force: true });
    throw error;
  } finally {
    await rm(subtitlesFile, { force: true });
  }
  return { probe: result, cpuSeconds, cues };
}
