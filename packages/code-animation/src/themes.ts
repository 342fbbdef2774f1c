import type { TokenKind } from "./highlight";

export interface CodeTheme {
  background: string;
  panel: string;
  text: string;
  lineNumber: string;
  highlight: string;
  cursor: string;
  tokens: Record<TokenKind, string>;
}

export const THEMES = {
  dark: {
    background: "#0f111a",
    panel: "#1a1d29",
    text: "#d6deeb",
    lineNumber: "#4b5263",
    highlight: "rgba(255, 214, 102, 0.16)",
    cursor: "#ffcc00",
    tokens: {
      plain: "#d6deeb",
      keyword: "#c792ea",
      string: "#addb67",
      comment: "#637777",
      number: "#f78c6c",
      function: "#82aaff",
      type: "#ffcb8b",
      punctuation: "#7fdbca",
    },
  },
  light: {
    background: "#e9edf2",
    panel: "#fbfbfd",
    text: "#24292e",
    lineNumber: "#a0a7b4",
    highlight: "rgba(255, 196, 0, 0.22)",
    cursor: "#0366d6",
    tokens: {
      plain: "#24292e",
      keyword: "#d73a49",
      string: "#032f62",
      comment: "#6a737d",
      number: "#005cc5",
      function: "#6f42c1",
      type: "#e36209",
      punctuation: "#24292e",
    },
  },
} as const satisfies Record<string, CodeTheme>;

export type ThemeName = keyof typeof THEMES;
export const THEME_NAMES = Object.keys(THEMES) as ThemeName[];
