"use client";

import { formatCost, formatWhen } from "@/lib/format";
import type { EditorNode } from "@/lib/graph-state";
import { runRow, type RunRow } from "@/lib/runs";
import type { RunsController } from "./use-runs";

const STATUS_TEXT: Record<RunRow["status"], string> = { running: "Running", completed: "Completed", failed: "Failed", cancelled: "Cancelled" };

/** The pipeline's runs, newest first (GET /pipelines/:id/runs), refreshed as node events arrive. */
export function RunHistory({ runs, nodes }: { runs: RunsController; nodes: ReadonlyMap<string, EditorNode> }) {
  if (!runs.historyOpen) return null;
  const rows = runs.history?.map((r) => runRow(r, nodes));
  return (
    <aside className="run-history" aria-label="Run history" data-testid="run-history">
      <div className="run-history-head">
        <h3>Run history</h3>
        <button type="button" className="icon-button" aria-label="Close run history" onClick={() => runs.setHistoryOpen(false)}>
          ×
        </button>
      </div>
      {runs.historyError && (
        <p className="node-error full" data-testid="history-error">
          {runs.historyError}
        </p>
      )}
      {rows === undefined && !runs.historyError && <p className="muted small">Loading…</p>}
      {rows?.length === 0 && (
        <p className="muted small" data-testid="history-empty">
          No runs yet. Run all, or run to a node, and it shows here.
        </p>
      )}
      <ol className="run-list">
        {rows?.map((row) => (
          <RunItem key={row.id} row={row} />
        ))}
      </ol>
    </aside>
  );
}

function RunItem({ row }: { row: RunRow }) {
  const { counts } = row;
  const parts: string[] = [`${counts.completed}/${row.total} completed`];
  if (counts.running) parts.push(`${counts.running} running`);
  if (counts.failed) parts.push(`${counts.failed} failed`);
  if (counts.cancelled) parts.push(`${counts.cancelled} cancelled`);
  const reuse: string[] = [];
  if (row.executed !== undefined) reuse.push(`${row.executed} executed`);
  if (row.cached !== undefined) reuse.push(`${row.cached} cached`);
  if (row.upToDate !== undefined) reuse.push(`${row.upToDate} up to date`);
  const seconds = row.finishedAt ? (Date.parse(row.finishedAt) - Date.parse(row.startedAt)) / 1000 : null;
  return (
    <li
      className={`run-item run-${row.status}`}
      data-testid="run-row"
      data-run-id={row.id}
      data-kind={row.kind}
      data-status={row.status}
      data-completed={counts.completed}
      data-total={row.total}
      data-cached={row.cached ?? ""}
      data-up-to-date={row.upToDate ?? ""}
      data-cost-saved={row.costSaved ?? ""}
    >
      <div className="run-item-head">
        <strong className="run-label" title={row.label}>
          {row.label}
        </strong>
        <span className={`badge status-${row.status === "running" ? "in_progress" : row.status}`} data-testid="run-status">
          <span className="badge-dot" aria-hidden />
          {STATUS_TEXT[row.status]}
        </span>
      </div>
      <div className="small" data-testid="run-counts">
        {parts.join(" · ")}
      </div>
      {reuse.length > 0 && (
        <div className="small muted" data-testid="run-reuse">
          {reuse.join(" · ")}
        </div>
      )}
      <div className="run-item-foot small muted">
        <span title={new Date(row.startedAt).toLocaleString("en-GB")}>{formatWhen(row.startedAt)}</span>
        {seconds !== null && <span>{seconds < 60 ? `${seconds.toFixed(1)} s` : `${Math.round(seconds / 60)} min`}</span>}
        <span data-testid="run-cost">
          {row.totalCost !== undefined
            ? `cost ${formatCost(row.totalCost)}`
            : row.estimatedTotalCost !== undefined
              ? `est. ${formatCost(row.estimatedTotalCost)}`
              : ""}
        </span>
        {row.costSaved !== undefined && row.costSaved > 0 && (
          <span className="saved" data-testid="run-saved">
            saved {formatCost(row.costSaved)}
          </span>
        )}
      </div>
    </li>
  );
}
