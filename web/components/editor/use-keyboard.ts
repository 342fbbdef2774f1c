"use client";

import { useEffect } from "react";

/** Escape anywhere: leave a field of the side panel and deselect every node and edge (which closes the panel). */
export function useEscapeToDeselect(deselect: () => void) {
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (event.key !== "Escape") return;
      const active = document.activeElement as HTMLElement | null;
      if (active && active !== document.body && active.closest(".panel")) active.blur();
      deselect();
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [deselect]);
}
