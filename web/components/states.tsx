"use client";

import { useEffect, useState } from "react";

export function Spinner() {
  return <span className="spinner" aria-hidden />;
}

export function LoadingState({ label }: { label: string }) {
  return (
    <div className="state-box" role="status" data-testid="loading">
      <Spinner />
      <span>{label}</span>
    </div>
  );
}

/**
 * A readable error with what to do about it. When `retryInMs` is given the caller retries on its own and
 * this shows the countdown; the button retries at once.
 */
export function ErrorState({ title, message, onRetry, retryAt }: { title: string; message: string; onRetry?: () => void; retryAt?: number }) {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!retryAt) return;
    const timer = setInterval(() => setNow(Date.now()), 250);
    return () => clearInterval(timer);
  }, [retryAt]);
  const seconds = retryAt ? Math.max(0, Math.ceil((retryAt - now) / 1000)) : undefined;
  return (
    <div className="state-box error" role="alert" data-testid="error-state">
      <strong>{title}</strong>
      <p>{message}</p>
      {seconds !== undefined && <p className="muted">Retrying automatically{seconds > 0 ? ` in ${seconds} s` : "…"}</p>}
      {onRetry && (
        <button type="button" className="button" onClick={onRetry}>
          Retry now
        </button>
      )}
    </div>
  );
}
