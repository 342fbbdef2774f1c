"use client";

import { useEffect, useRef, useState } from "react";
import type { RunEstimate } from "@vp/contracts";
import { formatCost } from "@/lib/format";
import type { EditorNode, StatusCounts } from "@/lib/graph-state";
import { estimateCounts, formatBudget, problemText, type ShownEstimate } from "@/lib/runs";
import { PlayIcon } from "../icons";
import type { RunsController } from "./use-runs";
import "./runs.css";

/**
 * The run bar under the header: Run all (which first shows the estimate against the budget), Cancel run while
 * anything is queued or running, the estimate and budget, the graph problems, and the run history toggle.
 */
export function RunBar({
  runs,
  counts,
  nodes,
  select,
}: {
  runs: RunsController;
  counts: StatusCounts;
  nodes: ReadonlyMap<string, EditorNode>;
  select: (id: string | null) => void;
}) {
  const [dialog, setDialog] = useState(false);
  const [problemsOpen, setProblemsOpen] = useState(false);
  const active = counts.queued + counts.in_progress;
  const { estimate, budget, problems } = runs;
  const over = !estimate.withinBudget;

  const openDialog = () => {
    setDialog(true);
    setProblemsOpen(false);
  };

  return (
    <div className="run-bar" data-testid="run-bar">
      <div className="run-bar-actions">
        <button type="button" className="button small" onClick={openDialog} disabled={runs.busy.has("all") || counts.total === 0} data-testid="run-all">
          <PlayIcon /> Run all
        </button>
        {active > 0 && (
          <button
            type="button"
            className="button small danger"
            onClick={() => void runs.cancelPipeline()}
            disabled={runs.busy.has("cancel")}
            title="Cancel every queued and running node of this pipeline"
            data-testid="cancel-run"
          >
            <StopIcon /> Cancel run
          </button>
        )}
      </div>

      <button
        type="button"
        className={`run-estimate${over ? " over" : ""}`}
        onClick={openDialog}
        title={estimate.origin === "gateway" ? "The gateway's estimate (knows the cache)" : "Estimated in the browser from the price table"}
        data-testid="run-estimate"
        data-estimate={estimate.estimatedTotalCost}
        data-budget={budget ?? ""}
        data-over={over}
        data-origin={estimate.origin}
      >
        <span className="muted">Estimate</span> <strong>{formatCost(estimate.estimatedTotalCost)}</strong>
        <span className="muted"> · budget </span>
        <strong data-testid="run-budget">{formatBudget(budget)}</strong>
        {over && <span className="over-label"> over budget</span>}
      </button>

      {problems.length > 0 && (
        <div className="run-problems-toggle">
          <button
            type="button"
            className="problem-chip"
            onClick={() => setProblemsOpen((o) => !o)}
            data-testid="problems-toggle"
            data-count={problems.length}
            aria-expanded={problemsOpen}
          >
            ⚠ {problems.length} problem{problems.length === 1 ? "" : "s"}
          </button>
          {problemsOpen && (
            <div className="popover problems-popover" data-testid="problems-list">
              <ProblemList
                problems={problems}
                nodes={nodes}
                select={(id) => {
                  select(id);
                  setProblemsOpen(false);
                }}
              />
            </div>
          )}
        </div>
      )}

      <span className="run-bar-spacer" />
      <button
        type="button"
        className={`button small secondary${runs.historyOpen ? " pressed" : ""}`}
        aria-pressed={runs.historyOpen}
        onClick={() => runs.setHistoryOpen(!runs.historyOpen)}
        data-testid="history-toggle"
      >
        Run history
      </button>

      {dialog && <RunDialog runs={runs} nodes={nodes} onClose={() => setDialog(false)} select={select} />}
    </div>
  );
}

/** Run all's confirmation: what will run, the estimate against the budget (red when over), the budget itself. */
function RunDialog({
  runs,
  nodes,
  onClose,
  select,
}: {
  runs: RunsController;
  nodes: ReadonlyMap<string, EditorNode>;
  onClose: () => void;
  select: (id: string | null) => void;
}) {
  const [force, setForce] = useState(false);
  const ref = useRef<HTMLDivElement>(null);
  const { estimate, budget, problems, gatewayEstimate } = runs;
  const counts = estimateCounts(estimate);
  const over = !estimate.withinBudget;

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => e.key === "Escape" && onClose();
    const onDown = (e: MouseEvent) => {
      if (
        ref.current &&
        !ref.current.contains(e.target as Node) &&
        !(e.target as HTMLElement).closest?.('[data-testid="run-all"], [data-testid="run-estimate"]')
      )
        onClose();
    };
    window.addEventListener("keydown", onKey);
    window.addEventListener("mousedown", onDown);
    return () => {
      window.removeEventListener("keydown", onKey);
      window.removeEventListener("mousedown", onDown);
    };
  }, [onClose]);

  // Opening the dialog asks for a fresh estimate; "ignore the cache" asks for the estimate of a forced run.
  const { refreshEstimate } = runs;
  useEffect(() => {
    void refreshEstimate({ force });
    return () => {
      if (force) void refreshEstimate();
    };
  }, [force, refreshEstimate]);

  return (
    <div className="popover run-dialog" ref={ref} role="dialog" aria-label="Run all" data-testid="run-dialog">
      <div className="run-dialog-head">
        <strong>Run all</strong>
        <button type="button" className="icon-button" aria-label="Close" onClick={onClose}>
          ×
        </button>
      </div>
      <div
        className={`estimate-total${over ? " over" : ""}`}
        data-testid="dialog-estimate"
        data-estimate={estimate.estimatedTotalCost}
        data-over={over}
        data-origin={estimate.origin}
      >
        <div>
          <span className="muted small">Estimated cost</span>
          <div className="big" data-testid="dialog-estimated-total">
            {formatCost(estimate.estimatedTotalCost)}
          </div>
        </div>
        <div className="vs">of</div>
        <div>
          <span className="muted small">Budget</span>
          <div className="big" data-testid="dialog-budget">
            {formatBudget(budget)}
          </div>
        </div>
      </div>
      {over && (
        <p className="over-text" role="alert" data-testid="over-budget">
          Over budget by {formatCost(estimate.estimatedTotalCost - (budget ?? 0))}: the gateway will refuse this run. Raise or clear the budget.
        </p>
      )}
      <p className="small" data-testid="dialog-counts">
        {counts.execute} to execute
        {estimate.origin === "gateway" && (
          <>
            {" "}
            · {counts.cached} from the cache{estimate.costSaved > 0 ? ` (saves ${formatCost(estimate.costSaved)})` : ""} · {counts.upToDate} up to date
          </>
        )}
        {estimate.origin === "browser" && counts.upToDate > 0 && <> · {counts.upToDate} completed</>}
      </p>
      {gatewayEstimate.phase === "missing" && (
        <p className="muted small">Estimated in the browser from the price table (this gateway gives no cache-aware estimate).</p>
      )}
      {gatewayEstimate.phase === "error" && <p className="muted small">Estimated in the browser: {gatewayEstimate.message}</p>}
      <EstimateNodes estimate={estimate} nodes={nodes} />
      <BudgetForm runs={runs} />
      {problems.length > 0 && (
        <div className="dialog-problems" data-testid="dialog-problems">
          <strong className="small">Problems the gateway will refuse this run for:</strong>
          <ProblemList problems={problems} nodes={nodes} select={select} />
        </div>
      )}
      <label className="check small">
        <input type="checkbox" checked={force} onChange={(e) => setForce(e.target.checked)} data-testid="force-run" /> Ignore the cache (run every node again)
      </label>
      <div className="row run-dialog-actions">
        <button
          type="button"
          className="button small"
          disabled={runs.busy.has("all")}
          onClick={async () => {
            // Started, or refused: either way what follows is on the canvas (statuses, or the refusal's reasons).
            await runs.runAll({ force });
            onClose();
          }}
          data-testid="start-run"
        >
          <PlayIcon /> {runs.busy.has("all") ? "Starting…" : "Start run"}
        </button>
        <button type="button" className="button small secondary" onClick={onClose}>
          Not now
        </button>
      </div>
    </div>
  );
}

function EstimateNodes({ estimate, nodes }: { estimate: RunEstimate; nodes: ReadonlyMap<string, EditorNode> }) {
  const shown = estimate.nodes.filter((n) => n.source !== "up-to-date" || n.costSaved);
  if (!shown.length) return null;
  return (
    <ul className="estimate-nodes" data-testid="estimate-nodes">
      {shown.map((n) => (
        <li key={n.nodeId} data-testid="estimate-node" data-node={n.nodeId} data-source={n.source}>
          <span className="estimate-node-title">{nodes.get(n.nodeId)?.title ?? n.nodeId}</span>
          <span className={`source source-${n.source}`}>{n.source === "execute" ? "runs" : n.source}</span>
          <span className="estimate-node-cost">{n.source === "cached" ? `saves ${formatCost(n.costSaved ?? 0)}` : formatCost(n.estimatedCost)}</span>
        </li>
      ))}
    </ul>
  );
}

/** The pipeline's budget (config.maxCost, US dollars): set, change, or clear. */
function BudgetForm({ runs }: { runs: RunsController }) {
  const [value, setValue] = useState(runs.budget === null ? "" : String(runs.budget));
  const [saving, setSaving] = useState(false);
  useEffect(() => setValue(runs.budget === null ? "" : String(runs.budget)), [runs.budget]);
  const parsed = value.trim() === "" ? null : Number(value);
  const invalid = parsed !== null && (!Number.isFinite(parsed) || parsed < 0);
  const unchanged = parsed === runs.budget;
  const save = async (maxCost: number | null) => {
    setSaving(true);
    await runs.setBudget(maxCost);
    setSaving(false);
  };
  return (
    <form
      className="budget-form"
      onSubmit={(e) => {
        e.preventDefault();
        if (!invalid && !unchanged) void save(parsed);
      }}
    >
      <label htmlFor="budget-input" className="small">
        Budget (USD)
      </label>
      <input
        id="budget-input"
        inputMode="decimal"
        placeholder="no budget"
        value={value}
        aria-invalid={invalid}
        onChange={(e) => setValue(e.target.value)}
        data-testid="budget-input"
      />
      <button type="submit" className="button small secondary" disabled={invalid || unchanged || saving} data-testid="budget-save">
        Save
      </button>
      {runs.budget !== null && (
        <button type="button" className="button small secondary" disabled={saving} onClick={() => void save(null)} data-testid="budget-clear">
          Clear
        </button>
      )}
      {invalid && <span className="field-error">A budget is a number of dollars, 0 or more</span>}
    </form>
  );
}

export function ProblemList({
  problems,
  nodes,
  select,
}: {
  problems: Array<{ nodeId: string; slot?: string; message: string }>;
  nodes: ReadonlyMap<string, EditorNode>;
  select: (id: string | null) => void;
}) {
  return (
    <ul className="problem-list">
      {problems.map((p, i) => (
        <li key={`${p.nodeId}-${p.slot ?? ""}-${i}`} data-testid="problem-item" data-node={p.nodeId}>
          <button type="button" className="link-like" onClick={() => select(nodes.has(p.nodeId) ? p.nodeId : null)}>
            {nodes.get(p.nodeId)?.title ?? p.nodeId}
          </button>
          <span>{problemText(p)}</span>
        </li>
      ))}
    </ul>
  );
}

/** The gateway refused a run: its reason, every problem node by node, or the per-node estimate over budget. */
export function RefusalBanner({ runs, nodes, select }: { runs: RunsController; nodes: ReadonlyMap<string, EditorNode>; select: (id: string | null) => void }) {
  const refusal = runs.refusal;
  if (!refusal) return null;
  return (
    <div className="refusal" role="alert" data-testid="run-refused">
      <div className="refusal-head">
        <strong>{refusal.action}</strong>
        <button type="button" className="icon-button" aria-label="Dismiss" onClick={runs.dismissRefusal} data-testid="dismiss-refusal">
          ×
        </button>
      </div>
      {refusal.problems?.length ? (
        <>
          <p className="small">
            {refusal.problems.length} problem{refusal.problems.length === 1 ? "" : "s"} to fix first (nothing ran):
          </p>
          <ProblemList problems={refusal.problems} nodes={nodes} select={select} />
        </>
      ) : (
        <p className="small" data-testid="refusal-message">
          {refusal.message}
        </p>
      )}
      {refusal.estimate && (
        <>
          <p className="small">
            Estimated <strong>{formatCost(refusal.estimate.estimatedTotalCost)}</strong> against a budget of{" "}
            <strong>{formatBudget(refusal.estimate.maxCost)}</strong>:
          </p>
          <EstimateNodes estimate={refusal.estimate} nodes={nodes} />
        </>
      )}
    </div>
  );
}

export function StopIcon({ size = 11 }: { size?: number }) {
  return (
    <svg width={size} height={size} viewBox="0 0 24 24" fill="currentColor" aria-hidden>
      <rect x="5" y="5" width="14" height="14" rx="2" />
    </svg>
  );
}

export function RetryIcon({ size = 13 }: { size?: number }) {
  return (
    <svg
      width={size}
      height={size}
      viewBox="0 0 24 24"
      fill="none"
      stroke="currentColor"
      strokeWidth={2.4}
      strokeLinecap="round"
      strokeLinejoin="round"
      aria-hidden
    >
      <path d="M3 12a9 9 0 1 0 3-6.7L3 8" />
      <path d="M3 3v5h5" />
    </svg>
  );
}

export function RunToHereIcon({ size = 12 }: { size?: number }) {
  return (
    <svg width={size} height={size} viewBox="0 0 24 24" fill="currentColor" aria-hidden>
      <path d="M3 5v14l8-7zM12 5v14l8-7z" />
      <rect x="20" y="5" width="2" height="14" />
    </svg>
  );
}

export type { ShownEstimate };
