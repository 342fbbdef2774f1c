"use client";

import { useState, type Dispatch, type ReactNode, type SetStateAction } from "react";
import { formatUsdApart } from "@vp/flow-graph";
import { exactCost, formatCost } from "@/lib/format";
import type { EditorNode, StatusCounts } from "@/lib/graph-state";
import { formatBudget, type ShownEstimate } from "@/lib/runs";
import { PlayIcon } from "../icons";
import { RunDialog } from "./run-dialog";
import { EstimateNodes, ProblemList } from "./run-lists";
import type { RunsController } from "./use-runs";
import "./runs.css";

export { ProblemList };

type Select = (id: string | null) => void;

/**
 * The run bar under the header: Run all (which first shows the estimate against the budget), Cancel run while
 * anything is queued or running, the estimate and budget, the graph problems, and the run history toggle.
 */
export function RunBar({
  runs,
  counts,
  nodes,
  select,
  children,
}: {
  runs: RunsController;
  counts: StatusCounts;
  nodes: ReadonlyMap<string, EditorNode>;
  select: Select;
  /** More buttons on the right, before Run history (Variables, Batches). */
  children?: ReactNode;
}) {
  const [dialog, setDialog] = useState(false);
  const [problemsOpen, setProblemsOpen] = useState(false);
  const openDialog = () => {
    setDialog(true);
    setProblemsOpen(false);
  };
  return (
    <div className="run-bar" data-testid="run-bar">
      <RunActions runs={runs} counts={counts} onRunAll={openDialog} />
      <EstimateButton runs={runs} onClick={openDialog} />
      {runs.problems.length > 0 && <ProblemsToggle runs={runs} nodes={nodes} select={select} open={problemsOpen} setOpen={setProblemsOpen} />}
      <span className="run-bar-spacer" />
      {children}
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

/** Run all, and Cancel run while anything is queued or running. */
function RunActions({ runs, counts, onRunAll }: { runs: RunsController; counts: StatusCounts; onRunAll: () => void }) {
  const active = counts.queued + counts.in_progress;
  return (
    <div className="run-bar-actions">
      <button type="button" className="button small" onClick={onRunAll} disabled={runs.busy.has("all") || counts.total === 0} data-testid="run-all">
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
  );
}

/** The estimate against the budget (red when over); opens Run all's dialog. */
function EstimateButton({ runs, onClick }: { runs: RunsController; onClick: () => void }) {
  const { estimate, budget } = runs;
  const over = !estimate.withinBudget;
  const [total, shownBudget] =
    budget === null ? [formatCost(estimate.estimatedTotalCost), formatBudget(null)] : formatUsdApart(estimate.estimatedTotalCost, budget);
  return (
    <button
      type="button"
      className={`run-estimate${over ? " over" : ""}`}
      onClick={onClick}
      title={estimate.origin === "gateway" ? "The gateway's estimate (knows the cache)" : "Estimated in the browser from the price table"}
      data-testid="run-estimate"
      data-estimate={estimate.estimatedTotalCost}
      data-budget={budget ?? ""}
      data-over={over}
      data-origin={estimate.origin}
    >
      <span className="muted">Estimate</span> <strong title={exactCost(estimate.estimatedTotalCost)}>{total}</strong>
      <span className="muted"> · budget </span>
      <strong data-testid="run-budget">{shownBudget}</strong>
      {over && <span className="over-label"> over budget</span>}
    </button>
  );
}

/** The number of graph problems; opens their list, where choosing one selects its node. */
function ProblemsToggle({
  runs,
  nodes,
  select,
  open,
  setOpen,
}: {
  runs: RunsController;
  nodes: ReadonlyMap<string, EditorNode>;
  select: Select;
  open: boolean;
  setOpen: Dispatch<SetStateAction<boolean>>;
}) {
  const { problems } = runs;
  return (
    <div className="run-problems-toggle">
      <button
        type="button"
        className="problem-chip"
        onClick={() => setOpen((o) => !o)}
        data-testid="problems-toggle"
        data-count={problems.length}
        aria-expanded={open}
      >
        ⚠ {problems.length} problem{problems.length === 1 ? "" : "s"}
      </button>
      {open && (
        <div className="popover problems-popover" data-testid="problems-list">
          <ProblemList
            problems={problems}
            nodes={nodes}
            select={(id) => {
              select(id);
              setOpen(false);
            }}
          />
        </div>
      )}
    </div>
  );
}

/** The gateway refused a run: its reason, every problem node by node, or the per-node estimate over budget. */
export function RefusalBanner({ runs, nodes, select }: { runs: RunsController; nodes: ReadonlyMap<string, EditorNode>; select: (id: string | null) => void }) {
  const refusal = runs.refusal;
  if (!refusal) return null;
  const [refusedTotal, refusedBudget] = refusal.estimate
    ? refusal.estimate.maxCost === null
      ? [formatCost(refusal.estimate.estimatedTotalCost), formatBudget(null)]
      : formatUsdApart(refusal.estimate.estimatedTotalCost, refusal.estimate.maxCost)
    : ["", ""];
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
            Estimated <strong>{refusedTotal}</strong> against a budget of <strong>{refusedBudget}</strong>:
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
