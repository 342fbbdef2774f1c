/**
 * The colour theme: the system's (prefers-color-scheme) unless the producer picked light or dark, remembered in
 * localStorage. A choice other than "system" is `data-theme` on <html>, which globals.css turns into color-scheme.
 */
export const THEMES = ["system", "light", "dark"] as const;
export type Theme = (typeof THEMES)[number];

export const THEME_STORAGE_KEY = "vp-theme";

export function parseTheme(value: string | null | undefined): Theme {
  return value === "light" || value === "dark" ? value : "system";
}

/** The theme in effect: the choice, or the system's when the choice is "system". */
export function resolveTheme(theme: Theme, systemDark: boolean): "light" | "dark" {
  return theme === "system" ? (systemDark ? "dark" : "light") : theme;
}

/**
 * Run in <head> before the body is painted (app/layout.tsx, with the page's CSP nonce): applies the stored choice
 * so a dark page never flashes light. Kept to the same key and values as parseTheme.
 */
export const THEME_SCRIPT = `try{var t=localStorage.getItem(${JSON.stringify(THEME_STORAGE_KEY)});if(t==="light"||t==="dark")document.documentElement.dataset.theme=t}catch(e){}`;
