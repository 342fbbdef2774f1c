import { normalizeCode } from "./timing";
import { THEME_NAMES, type ThemeName } from "./themes";

/** The id under which the composition is registered (and selected by the renderer). */
export const COMPOSITION_ID = "CodeTyping";

/** Everything the composition renders from. Plain JSON: it crosses into the browser as input props. */
export interface CodeAnimationProps {
  [key: string]: unknown;
  /** Normalised code (see normalizeCode). */
  code: string;
  language: string;
  theme: ThemeName;
  /** Characters typed per second. */
  typingSpeed: number;
  /** 1-based line numbers to mark. */
  highlightLines: number[];
  width: number;
  height: number;
  fps: number;
}

export const DEFAULTS = {
  language: "plain",
  theme: "dark" as ThemeName,
  typingSpeed: 30,
  width: 1280,
  height: 720,
  fps: 30,
};

const even = (n: number) => Math.max(2, Math.round(n / 2) * 2);

/** Fills defaults, normalises the code and rounds the frame size to even numbers (yuv420p needs them). */
export function resolveProps(input: {
  code: string;
  language?: string;
  theme?: string;
  typingSpeed?: number;
  highlightLines?: readonly number[];
  width?: number;
  height?: number;
  fps?: number;
}): CodeAnimationProps {
  const theme = THEME_NAMES.includes(input.theme as ThemeName) ? (input.theme as ThemeName) : DEFAULTS.theme;
  return {
    code: normalizeCode(input.code),
    language: input.language?.trim() || DEFAULTS.language,
    theme,
    typingSpeed: input.typingSpeed ?? DEFAULTS.typingSpeed,
    highlightLines: [...new Set(input.highlightLines ?? [])].filter((n) => Number.isInteger(n) && n >= 1).sort((a, b) => a - b),
    width: even(input.width ?? DEFAULTS.width),
    height: even(input.height ?? DEFAULTS.height),
    fps: input.fps ?? DEFAULTS.fps,
  };
}
