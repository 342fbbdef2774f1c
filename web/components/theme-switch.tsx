"use client";

import { useSyncExternalStore } from "react";
import { parseTheme, resolveTheme, THEME_STORAGE_KEY, THEMES, type Theme } from "@/lib/theme";

const CHANGED = "vp-theme-change";
const DARK_QUERY = "(prefers-color-scheme: dark)";

function subscribe(onChange: () => void): () => void {
  const media = window.matchMedia(DARK_QUERY);
  window.addEventListener(CHANGED, onChange);
  window.addEventListener("storage", onChange);
  media.addEventListener("change", onChange);
  return () => {
    window.removeEventListener(CHANGED, onChange);
    window.removeEventListener("storage", onChange);
    media.removeEventListener("change", onChange);
  };
}

function storedTheme(): Theme {
  try {
    return parseTheme(localStorage.getItem(THEME_STORAGE_KEY));
  } catch {
    return "system";
  }
}

/** Saves the choice and applies it to <html> (the same attribute the pre-paint script sets). */
export function setTheme(theme: Theme): void {
  try {
    if (theme === "system") localStorage.removeItem(THEME_STORAGE_KEY);
    else localStorage.setItem(THEME_STORAGE_KEY, theme);
  } catch {
    /* storage off: the choice holds for this page only */
  }
  if (theme === "system") delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = theme;
  window.dispatchEvent(new Event(CHANGED));
}

/** The stored choice, and the theme in effect (for React Flow's colorMode and the code editor). */
export function useTheme(): { theme: Theme; resolved: "light" | "dark" } {
  const theme = useSyncExternalStore(subscribe, storedTheme, () => "system" as const);
  const systemDark = useSyncExternalStore(
    subscribe,
    () => window.matchMedia(DARK_QUERY).matches,
    () => false,
  );
  return { theme, resolved: resolveTheme(theme, systemDark) };
}

const LABEL: Record<Theme, string> = { system: "System", light: "Light", dark: "Dark" };

/** System / Light / Dark, as a group of three toggle buttons. */
export function ThemeSwitch() {
  const { theme } = useTheme();
  return (
    <div className="theme-switch" role="radiogroup" aria-label="Colour theme" data-testid="theme-switch" data-theme-choice={theme}>
      {THEMES.map((t) => (
        <button
          key={t}
          type="button"
          role="radio"
          aria-checked={theme === t}
          className={theme === t ? "active" : undefined}
          title={t === "system" ? "Follow the system's light or dark setting" : `${LABEL[t]} theme`}
          onClick={() => setTheme(t)}
          data-testid={`theme-${t}`}
        >
          {LABEL[t]}
        </button>
      ))}
    </div>
  );
}
