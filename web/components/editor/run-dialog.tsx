"use client";

import { useEffect, useRef, useState, type RefObject } from "react";
import { formatUsd, formatUsdApart } from "@vp/flow-graph";
import { exactCost, formatCost } from "@/lib/format";
import type { EditorNode } from "@/lib/graph-state";
import { estimateCounts, type ShownEstimate } from "@/lib/runs";
import { PlayIcon } from "../icons";
import { EstimateNodes, ProblemList } from "./run-lists";
import type { RunsController } from "./use-runs";

/** Run all's confirmation: what will run, the estimate against the budget (red when over), the budget itself. */
export function RunDialog({
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
  const { estimate, budget, problems } = runs;
  // The gateway refuses a run over budget: it is not offered.
  const overBudget = !estimate.withinBudget;
  useDismiss(ref, onClose);
  useDialogEstimate(runs.refreshEstimate, force);

  return (
    <div className="popover run-dialog" ref={ref} role="dialog" aria-label="Run all" data-testid="run-dialog">
      <div className="run-dialog-head">
        <strong>Run all</strong>
        <button type="button" className="icon-button" aria-label="Close" onClick={onClose}>
          ×
        </button>
      </div>
      <EstimateTotal estimate={estimate} budget={budget} />
      <EstimateSummary estimate={estimate} gatewayEstimate={runs.gatewayEstimate} />
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
          disabled={runs.busy.has("all") || overBudget}
          title={overBudget ? "Over budget: raise or clear the budget to start this run" : undefined}
          aria-describedby={overBudget ? "over-budget" : undefined}
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

/** Escape, or a press outside the dialog (other than on the buttons that open it), closes it. */
function useDismiss(ref: RefObject<HTMLElement | null>, onClose: () => void) {
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
  }, [ref, onClose]);
}

/** Opening the dialog asks for a fresh estimate; "ignore the cache" asks for the estimate of a forced run. */
function useDialogEstimate(refreshEstimate: RunsController["refreshEstimate"], force: boolean) {
  useEffect(() => {
    void refreshEstimate({ force });
    return () => {
      if (force) void refreshEstimate();
    };
  }, [force, refreshEstimate]);
}

/** The estimated cost of the run beside the budget, and by how much it is over. */
function EstimateTotal({ estimate, budget }: { estimate: ShownEstimate; budget: number | null }) {
  const over = !estimate.withinBudget;
  // Side by side, the two read differently whenever they differ ($0.00013 of $0.00010, not $0.00 of $0.00).
  const [total, shownBudget] = budget === null ? [formatCost(estimate.estimatedTotalCost), "none"] : formatUsdApart(estimate.estimatedTotalCost, budget);
  return (
    <>
      <div
        className={`estimate-total${over ? " over" : ""}`}
        data-testid="dialog-estimate"
        data-estimate={estimate.estimatedTotalCost}
        data-over={over}
        data-origin={estimate.origin}
      >
        <div>
          <span className="muted small">Estimated cost</span>
          <div className="big" data-testid="dialog-estimated-total" title={exactCost(estimate.estimatedTotalCost)}>
            {total}
          </div>
        </div>
        <div className="vs">of</div>
        <div>
          <span className="muted small">Budget</span>
          <div className="big" data-testid="dialog-budget">
            {shownBudget}
          </div>
        </div>
      </div>
      {over && (
        <p className="over-text" role="alert" data-testid="over-budget" id="over-budget">
          Over budget by {formatUsd(Math.max(0, estimate.estimatedTotalCost - (budget ?? 0)))}: the gateway would refuse this run, so Start run is off. Raise or
          clear the budget.
        </p>
      )}
    </>
  );
}

/** How many nodes run, come from the cache or are up to date, and where the estimate came from. */
function EstimateSummary({ estimate, gatewayEstimate }: { estimate: ShownEstimate; gatewayEstimate: RunsController["gatewayEstimate"] }) {
  const counts = estimateCounts(estimate);
  return (
    <>
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
    </>
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
