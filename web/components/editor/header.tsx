"use client";

import Link from "next/link";
import { formatCost } from "@/lib/format";
import type { StatusCounts } from "@/lib/graph-state";
import type { LiveStatus } from "@/lib/use-pipeline";
import type { UndoController } from "./use-undo";
import { ThemeSwitch } from "../theme-switch";

/** The pipeline page's header: title, live progress counts and total cost, connection state, actions. */
export function EditorHeader({
  title,
  counts,
  cost,
  live,
  undo,
  onFitView,
  onAutoLayout,
  onExport,
  onVersions,
  readOnly,
}: {
  title: string;
  counts: StatusCounts;
  cost: number;
  live: LiveStatus;
  undo: UndoController;
  onFitView: () => void;
  onAutoLayout: () => void;
  onExport: () => void;
  onVersions: () => void;
  /** Why edits are off, or null. */
  readOnly: string | null;
}) {
  const running = counts.in_progress + counts.queued;
  const pct = (n: number) => (counts.total ? `${(n / counts.total) * 100}%` : "0%");
  return (
    <header className="editor-header">
      <Link href="/" className="back-link" aria-label="Back to the pipelines">
        ← Pipelines
      </Link>
      <h1 className="editor-title" title={title} data-testid="pipeline-title">
        {title}
      </h1>
      <div className="header-progress" data-testid="pipeline-progress" data-completed={counts.completed} data-total={counts.total}>
        <div className="bar stacked" aria-hidden>
          <div className="bar-fill completed" style={{ width: pct(counts.completed) }} />
          <div className="bar-fill running" style={{ width: pct(running) }} />
          <div className="bar-fill failed" style={{ width: pct(counts.failed) }} />
        </div>
        <span className="small">
          <strong>{counts.completed}</strong>/{counts.total} completed
          {running ? ` · ${running} running` : ""}
          {counts.failed ? ` · ${counts.failed} failed` : ""}
        </span>
      </div>
      <div className="header-cost small" data-testid="pipeline-cost">
        Total <strong>{formatCost(cost)}</strong>
      </div>
      <div className={`live-indicator ${live}`} data-testid="live-status" data-live={live} role="status">
        <span className="badge-dot" aria-hidden />
        {live === "live" ? "Live" : live === "connecting" ? "Connecting…" : "Reconnecting…"}
      </div>
      <div className="row">
        <button
          type="button"
          className="button secondary small"
          disabled={!undo.undoLabel || readOnly !== null}
          title={undo.undoLabel ? `Undo: ${undo.undoLabel} (Ctrl+Z)` : "Nothing to undo"}
          onClick={() => void undo.undo()}
          data-testid="undo"
        >
          Undo
        </button>
        <button
          type="button"
          className="button secondary small"
          disabled={!undo.redoLabel || readOnly !== null}
          title={undo.redoLabel ? `Redo: ${undo.redoLabel} (Ctrl+Shift+Z)` : "Nothing to redo"}
          onClick={() => void undo.redo()}
          data-testid="redo"
        >
          Redo
        </button>
        <button
          type="button"
          className="button secondary small"
          onClick={onAutoLayout}
          disabled={readOnly !== null}
          title="Arrange every node left to right by its data flow, with nothing overlapping"
          data-testid="auto-layout"
        >
          Auto-layout
        </button>
        <button type="button" className="button secondary small" onClick={onFitView} data-testid="fit-view">
          Fit view
        </button>
        <button type="button" className="button secondary small" onClick={onExport} data-testid="export-button">
          Export JSON
        </button>
        <button
          type="button"
          className="button secondary small"
          onClick={onVersions}
          title="Every change to this pipeline: who made it and when; view or restore an earlier version"
          data-testid="versions-button"
        >
          Versions
        </button>

        <ThemeSwitch />
      </div>
    </header>
  );
}
