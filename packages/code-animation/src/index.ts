/** Browser-safe: props, timing, highlighter, themes. The composition is "./composition"; rendering (Node) is "./render". */
export { COMPOSITION_ID, DEFAULTS, resolveProps, type CodeAnimationProps } from "./props";
export { codeTiming, normalizeCode, visibleChars, LEAD_IN_SECONDS, HOLD_SECONDS, type CodeTiming } from "./timing";
export { tokenize, tokenLines, sliceTokens, languageOf, type Token, type TokenKind } from "./highlight";
export { THEMES, THEME_NAMES, type ThemeName, type CodeTheme } from "./themes";
