"use client";

import { useCallback, useRef, useState } from "react";

export interface Toast {
  id: number;
  message: string;
  kind: "error" | "info";
}

/** Short messages (a refused connection, a failed save), each gone after a few seconds. */
export function useToasts(timeoutMs = 7000) {
  const [toasts, setToasts] = useState<Toast[]>([]);
  const next = useRef(1);
  const push = useCallback(
    (message: string, kind: "error" | "info" = "error") => {
      const id = next.current++;
      setToasts((list) => [...list.filter((t) => t.message !== message), { id, message, kind }].slice(-4));
      setTimeout(() => setToasts((list) => list.filter((t) => t.id !== id)), timeoutMs);
    },
    [timeoutMs],
  );
  const dismiss = useCallback((id: number) => setToasts((list) => list.filter((t) => t.id !== id)), []);
  return { toasts, push, dismiss };
}

export function Toasts({ toasts, dismiss }: { toasts: Toast[]; dismiss: (id: number) => void }) {
  return (
    <div className="toasts" aria-live="polite">
      {toasts.map((t) => (
        <div key={t.id} className={`toast ${t.kind}`} role={t.kind === "error" ? "alert" : "status"} data-testid="toast">
          <span>{t.message}</span>
          <button type="button" className="toast-close" aria-label="Dismiss" onClick={() => dismiss(t.id)}>
            ×
          </button>
        </div>
      ))}
    </div>
  );
}
