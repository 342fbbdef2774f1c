"use client";

import { useEffect } from "react";

/** The error boundary of every page: a readable message and a way back, never a blank screen. */
export default function ErrorBoundary({ error, reset }: { error: Error & { digest?: string }; reset: () => void }) {
  useEffect(() => {
    console.warn("editor error boundary", error);
  }, [error]);
  return (
    <main className="page">
      <div className="state-box error" role="alert" data-testid="error-boundary">
        <strong>Something went wrong in the editor</strong>
        <p>{error.message || "An unexpected error occurred."}</p>
        <div className="row">
          <button type="button" className="button" onClick={reset}>
            Try again
          </button>
          <a className="button secondary" href="/">
            Back to pipelines
          </a>
        </div>
      </div>
    </main>
  );
}
