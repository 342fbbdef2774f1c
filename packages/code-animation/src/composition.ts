/**
 * The code-typing composition: the code appears character by character with syntax colours, line numbers,
 * a cursor and marked lines. Written with createElement (no JSX) so it compiles under the repository's
 * TypeScript settings and bundles as it is; the editor can import it for a preview (@remotion/player).
 */
import { createElement as h, type CSSProperties, type ReactNode } from "react";
import { AbsoluteFill, Composition, useCurrentFrame } from "remotion";
import { sliceTokens, tokenize, tokenLines } from "./highlight";
import { COMPOSITION_ID, DEFAULTS, type CodeAnimationProps } from "./props";
import { THEMES } from "./themes";
import { codeTiming, visibleChars } from "./timing";

const FONT = "'DejaVu Sans Mono', 'Liberation Mono', 'Menlo', 'Consolas', monospace";
/** Width of one monospace character relative to the font size (DejaVu Sans Mono: 0.602). */
const CHAR_WIDTH = 0.61;
const LINE_HEIGHT = 1.45;

/** The largest font size at which every line of the code fits the frame, so the layout never moves. */
export function fitFontSize(code: string, width: number, height: number): number {
  const lines = code.split("\n");
  const longest = Math.max(1, ...lines.map((l) => l.length));
  const gutterChars = String(lines.length).length + 2;
  const padding = Math.round(Math.min(width, height) * 0.06);
  const byHeight = (height - 2 * padding) / (Math.max(lines.length, 4) * LINE_HEIGHT);
  const byWidth = (width - 2 * padding) / ((longest + gutterChars + 1) * CHAR_WIDTH);
  return Math.max(4, Math.floor(Math.min(byHeight, byWidth, height / 14)));
}

export function CodeTyping(props: CodeAnimationProps): ReactNode {
  const frame = useCurrentFrame();
  const { code, language, typingSpeed, fps, width, height } = props;
  const theme = THEMES[props.theme] ?? THEMES.dark;
  const timing = codeTiming({ code, typingSpeed, fps });
  const shown = visibleChars(frame, timing, typingSpeed, fps);
  const tokens = tokenize(code, language);
  const typed = tokenLines(sliceTokens(tokens, shown));
  const allLines = code.split("\n");
  const fontSize = fitFontSize(code, width, height);
  const padding = Math.round(Math.min(width, height) * 0.06);
  const gutter = String(allLines.length).length;
  const highlighted = new Set(props.highlightLines);
  const typing = shown < timing.chars;
  // Blinks twice a second once typing is done; solid while typing.
  const cursorOn = typing || Math.floor((frame / fps) * 2) % 2 === 0;
  const cursorLine = typed.length - 1;

  const lineStyle: CSSProperties = { display: "flex", height: fontSize * LINE_HEIGHT, alignItems: "center", whiteSpace: "pre" };
  const rows = allLines.map((_, index) => {
    const lineTokens = typed[index];
    const complete = index < typed.length - 1 || (index === typed.length - 1 && !typing);
    const mark = highlighted.has(index + 1) && complete;
    return h(
      "div",
      { key: index, style: { ...lineStyle, background: mark ? theme.highlight : "transparent", borderRadius: fontSize * 0.2 } },
      h("span", { style: { color: theme.lineNumber, width: `${gutter + 1.5}ch`, textAlign: "right", paddingRight: "1.5ch", flex: "none" } }, String(index + 1)),
      h(
        "span",
        { style: { color: theme.text } },
        ...(lineTokens ?? []).map((t, k) => h("span", { key: k, style: { color: theme.tokens[t.kind] } }, t.text)),
        index === cursorLine && cursorOn
          ? h("span", { style: { display: "inline-block", width: "0.6ch", height: fontSize * 1.1, background: theme.cursor, verticalAlign: "middle" } })
          : null,
      ),
    );
  });

  return h(
    AbsoluteFill,
    { style: { background: theme.background, padding, fontFamily: FONT, fontSize } },
    h("div", { style: { background: theme.panel, borderRadius: fontSize * 0.6, padding: fontSize, flex: 1, overflow: "hidden" } }, ...rows),
  );
}

/** The composition as Remotion registers it; duration and size follow from the props. */
export function CodeAnimationRoot(): ReactNode {
  const defaultProps: CodeAnimationProps = {
    code: "const hello = 'world';",
    language: "typescript",
    theme: DEFAULTS.theme,
    typingSpeed: DEFAULTS.typingSpeed,
    highlightLines: [],
    width: DEFAULTS.width,
    height: DEFAULTS.height,
    fps: DEFAULTS.fps,
  };
  return h(Composition<never, CodeAnimationProps>, {
    id: COMPOSITION_ID,
    component: CodeTyping,
    defaultProps,
    calculateMetadata: ({ props }: { props: CodeAnimationProps }) => ({
      durationInFrames: codeTiming({ code: props.code, typingSpeed: props.typingSpeed, fps: props.fps }).durationInFrames,
      fps: props.fps,
      width: props.width,
      height: props.height,
    }),
  } as never);
}
