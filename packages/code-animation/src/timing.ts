/**
 * The timing of a code-typing animation, shared by the composition (what frame shows how many characters)
 * and the executor (how long the MP4 will be, before rendering it). Pure: no React, no Node.
 */

/** Still frames before the first character appears. */
export const LEAD_IN_SECONDS = 0.5;
/** Still frames after the last character, so the finished code can be read. */
export const HOLD_SECONDS = 1.5;
/** Spaces a tab becomes: the typing counts what is shown. */
const TAB = "    ";

export interface CodeTiming {
  /** Characters typed, newlines included (the normalised code's length). */
  chars: number;
  leadInFrames: number;
  typingFrames: number;
  holdFrames: number;
  durationInFrames: number;
  durationSeconds: number;
}

/**
 * The code as it is shown and typed: CRLF/CR as LF, tabs as four spaces, trailing whitespace of each line
 * and trailing blank lines removed (they would only add invisible typing time).
 */
export function normalizeCode(code: string): string {
  return code
    .replace(/\r\n?/g, "\n")
    .replaceAll("\t", TAB)
    .split("\n")
    .map((line) => line.replace(/\s+$/, ""))
    .join("\n")
    .replace(/\n+$/, "")
    .replace(/^\n+/, "");
}

/**
 * Frames of each phase: lead-in, typing (`chars / typingSpeed` seconds, rounded up to whole frames), hold.
 * `code` must already be normalised.
 */
export function codeTiming({ code, typingSpeed, fps }: { code: string; typingSpeed: number; fps: number }): CodeTiming {
  if (!(typingSpeed > 0) || !(fps > 0)) throw new RangeError("typingSpeed and fps must be positive");
  const chars = code.length;
  const leadInFrames = Math.round(LEAD_IN_SECONDS * fps);
  const typingFrames = Math.max(1, Math.ceil((chars / typingSpeed) * fps));
  const holdFrames = Math.round(HOLD_SECONDS * fps);
  const durationInFrames = leadInFrames + typingFrames + holdFrames;
  return { chars, leadInFrames, typingFrames, holdFrames, durationInFrames, durationSeconds: durationInFrames / fps };
}

/** How many characters of the code are visible at `frame`. */
export function visibleChars(frame: number, timing: CodeTiming, typingSpeed: number, fps: number): number {
  const typingFrame = frame - timing.leadInFrames;
  if (typingFrame < 0) return 0;
  return Math.min(timing.chars, Math.floor(((typingFrame + 1) * typingSpeed) / fps));
}
