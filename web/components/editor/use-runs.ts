"use client";

import { useCallback, useMemo } from "react";
import type { GraphProblem, RunRecord } from "@vp/contracts";
import type { Api } from "@/lib/api";
import type { GraphAction, GraphState } from "@/lib/graph-state";
import { budgetOf, statusSignature, structureSignature, type GatewayEstimate, type ProblemsByNode, type Refusal, type ShownEstimate } from "@/lib/runs";
import { useRefusal } from "./use-refusal";
import { useRunActions } from "./use-run-actions";
import { useRunEstimate } from "./use-run-estimate";
import { useRunHistory } from "./use-run-history";
import { useRunProblems } from "./use-run-problems";

export type { GatewayEstimate, Refusal };

const NO_VARIABLES: never[] = [];

export interface RunsController {
  /** Every problem a run would be refused for: the browser's live check plus the gateway's last refusal. */
  problems: GraphProblem[];
  problemsByNode: ProblemsByNode;
  /** Nodes whose problems the gateway reported (a refused run), for the marker's origin. */
  serverProblemNodes: ReadonlySet<string>;
  refusal: Refusal | null;
  dismissRefusal(): void;
  budget: number | null;
  setBudget(maxCost: number | null): Promise<boolean>;
  /** The gateway's (cache-aware) estimate when it has one, else the browser's. */
  estimate: ShownEstimate;
  gatewayEstimate: GatewayEstimate;
  refreshEstimate(options?: { force?: boolean }): Promise<void>;
  runAll(options?: { force?: boolean }): Promise<boolean>;
  runToHere(nodeId: string): Promise<void>;
  retry(nodeId: string, downstream: boolean): Promise<void>;
  cancelNode(nodeId: string): Promise<void>;
  cancelPipeline(): Promise<void>;
  /** Actions waiting for the gateway's answer: "all", "cancel", or a node id. */
  busy: ReadonlySet<string>;
  history: RunRecord[] | null;
  historyError: string | null;
  historyOpen: boolean;
  setHistoryOpen(open: boolean): void;
  refreshHistory(): Promise<void>;
}

/**
 * Runs from the editor: the actions (each one request to the gateway; statuses then arrive over SSE), what a
 * refused run said, the estimate and budget (the gateway's, cache-aware; the browser's price-table estimate when
 * the gateway has no estimate route), and the run history.
 */
export function useRuns({
  api,
  pipelineId,
  state,
  dispatch,
  toast,
}: {
  api: Api;
  pipelineId: string;
  state: GraphState;
  dispatch: (a: GraphAction) => void;
  toast: (message: string, kind?: "error" | "info") => void;
}): RunsController {
  const budget = budgetOf(state.pipeline?.config);
  const structure = useMemo(() => structureSignature(state.nodes), [state.nodes]);
  const statuses = useMemo(() => statusSignature(state.nodes), [state.nodes]);

  const { refusal, server, refused, clearRefusal, dismissRefusal } = useRefusal(structure, toast);
  const problems = useRunProblems(state.nodes, structure, server, state.pipeline?.variables ?? NO_VARIABLES);
  const estimate = useRunEstimate({ api, pipelineId, nodes: state.nodes, budget, structure, statuses });
  const history = useRunHistory(api, pipelineId, statuses);
  const { historyOpen, refreshHistory } = history;
  const started = useCallback(() => {
    clearRefusal();
    if (historyOpen) void refreshHistory();
  }, [clearRefusal, historyOpen, refreshHistory]);
  const actions = useRunActions({ api, pipelineId, dispatch, toast, started, refused });

  // One object per change of what it holds: node cards read it through the editor context.
  return useMemo(
    () => ({ ...problems, ...estimate, ...history, ...actions, refusal, dismissRefusal, budget }),
    [problems, estimate, history, actions, refusal, dismissRefusal, budget],
  );
}
