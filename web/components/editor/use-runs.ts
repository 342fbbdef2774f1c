"use client";

import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import type { GraphProblem, RunEstimate, RunRecord } from "@vp/contracts";
import { ApiError, errorMessage, type Api } from "@/lib/api";
import type { GraphAction, GraphState } from "@/lib/graph-state";
import {
  browserEstimate,
  budgetOf,
  groupProblems,
  pipelineProblems,
  statusSignature,
  structureSignature,
  type ProblemsByNode,
  type ShownEstimate,
} from "@/lib/runs";

/** Why the gateway refused a run: its message, and the problems or per-node estimate it listed. */
export interface Refusal {
  message: string;
  action: string;
  problems?: GraphProblem[];
  estimate?: RunEstimate;
}

export type GatewayEstimate =
  | { phase: "idle" }
  | { phase: "loading" }
  | { phase: "ok"; estimate: RunEstimate; problems: GraphProblem[] }
  /** The gateway has no estimate route (older gateway): the browser's price-table estimate is shown. */
  | { phase: "missing" }
  | { phase: "error"; message: string };

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

const ESTIMATE_DELAY_MS = 400;
const HISTORY_DELAY_MS = 300;
const HISTORY_POLL_MS = 1500;

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
  const [busy, setBusy] = useState<ReadonlySet<string>>(new Set());
  const [refusal, setRefusal] = useState<Refusal | null>(null);
  const [server, setServer] = useState<{ problems: GraphProblem[]; signature: string } | null>(null);
  const [gatewayEstimate, setGatewayEstimate] = useState<GatewayEstimate>({ phase: "idle" });
  const [history, setHistory] = useState<RunRecord[] | null>(null);
  const [historyError, setHistoryError] = useState<string | null>(null);
  const [historyOpen, setHistoryOpen] = useState(false);

  const budget = budgetOf(state.pipeline?.config);
  const structure = useMemo(() => structureSignature(state.nodes), [state.nodes]);
  const statuses = useMemo(() => statusSignature(state.nodes), [state.nodes]);
  // Checked when the structure (or which nodes are completed) changes, not on every progress event: the check
  // is not free on a large graph, and progress cannot change its answer.
  const nodesRef = useRef(state.nodes);
  nodesRef.current = state.nodes;
  const live = useMemo(() => (structure ? pipelineProblems(nodesRef.current) : []), [structure]);

  // The gateway's problems stand until the graph they were found in changes.
  const serverProblems = useMemo(() => (server && server.signature === structure ? server.problems : []), [server, structure]);
  const problems = useMemo(() => {
    const seen = new Set<string>();
    return [...serverProblems, ...live].filter((p) => {
      const key = `${p.nodeId}\u0000${p.slot ?? ""}\u0000${p.message}`;
      return seen.has(key) ? false : (seen.add(key), true);
    });
  }, [serverProblems, live]);
  const problemsByNode = useMemo(() => groupProblems(problems), [problems]);
  const serverProblemNodes = useMemo(() => new Set(serverProblems.map((p) => p.nodeId)), [serverProblems]);

  const mark = useCallback((key: string, on: boolean) => {
    setBusy((s) => {
      const next = new Set(s);
      if (on) next.add(key);
      else next.delete(key);
      return next;
    });
  }, []);

  const refreshHistory = useCallback(async () => {
    try {
      const { runs } = await api.listRuns(pipelineId);
      setHistory(runs);
      setHistoryError(null);
    } catch (error) {
      setHistoryError(errorMessage(error));
    }
  }, [api, pipelineId]);

  const refreshEstimate = useCallback(
    async ({ force = false }: { force?: boolean } = {}) => {
      setGatewayEstimate((g) => (g.phase === "ok" ? g : { phase: "loading" }));
      try {
        const answer = await api.estimate(pipelineId, { force });
        setGatewayEstimate({ phase: "ok", estimate: answer.estimate, problems: answer.problems ?? [] });
      } catch (error) {
        if (error instanceof ApiError && (error.status === 404 || error.status === 405)) setGatewayEstimate({ phase: "missing" });
        // A passing failure (the gateway restarting) keeps the last estimate it gave.
        else setGatewayEstimate((g) => (g.phase === "ok" ? g : { phase: "error", message: errorMessage(error) }));
      }
    },
    [api, pipelineId],
  );

  // The gateway's estimate, kept current as the graph, its statuses and the budget change; a gateway without the
  // route (404) is not asked again, and the browser's estimate stands in.
  const estimateMissing = gatewayEstimate.phase === "missing";
  useEffect(() => {
    if (estimateMissing) return;
    const timer = setTimeout(() => void refreshEstimate(), ESTIMATE_DELAY_MS);
    return () => clearTimeout(timer);
  }, [estimateMissing, structure, statuses, budget, refreshEstimate]);

  // History: loaded when opened, refreshed on SSE activity, polled while a run is still marked running.
  useEffect(() => {
    if (!historyOpen) return;
    const timer = setTimeout(() => void refreshHistory(), HISTORY_DELAY_MS);
    return () => clearTimeout(timer);
  }, [historyOpen, statuses, refreshHistory]);
  const anyRunning = !!history?.some((r) => r.status === "running");
  useEffect(() => {
    if (!historyOpen || !anyRunning) return;
    const timer = setInterval(() => void refreshHistory(), HISTORY_POLL_MS);
    return () => clearInterval(timer);
  }, [historyOpen, anyRunning, refreshHistory]);

  const refused = useCallback(
    (action: string, error: unknown) => {
      if (error instanceof ApiError && error.status === 422) {
        const body = (error.body ?? {}) as { problems?: GraphProblem[]; estimate?: RunEstimate };
        if (body.problems?.length) setServer({ problems: body.problems, signature: structure });
        setRefusal({ action, message: error.message, problems: body.problems, estimate: body.estimate });
        return;
      }
      toast(`${action}: ${errorMessage(error)}`);
    },
    [structure, toast],
  );

  const started = useCallback(() => {
    setRefusal(null);
    setServer(null);
    if (historyOpen) void refreshHistory();
  }, [historyOpen, refreshHistory]);

  const runAll = useCallback(
    async ({ force = false }: { force?: boolean } = {}) => {
      mark("all", true);
      try {
        await api.runAll(pipelineId, { force });
        started();
        return true;
      } catch (error) {
        refused("Run all refused", error);
        return false;
      } finally {
        mark("all", false);
      }
    },
    [api, pipelineId, mark, started, refused],
  );

  const nodeAction = useCallback(
    async (nodeId: string, action: string, call: () => Promise<unknown>) => {
      mark(nodeId, true);
      try {
        await call();
        started();
      } catch (error) {
        refused(`${action} refused`, error);
      } finally {
        mark(nodeId, false);
      }
    },
    [mark, started, refused],
  );

  const runToHere = useCallback((nodeId: string) => nodeAction(nodeId, "Run to here", () => api.runToHere(pipelineId, nodeId)), [api, pipelineId, nodeAction]);
  const retry = useCallback(
    (nodeId: string, downstream: boolean) => nodeAction(nodeId, "Retry", () => api.retryNode(pipelineId, nodeId, { downstream })),
    [api, pipelineId, nodeAction],
  );
  const cancelNode = useCallback(
    async (nodeId: string) => {
      mark(nodeId, true);
      try {
        await api.cancelNode(pipelineId, nodeId);
      } catch (error) {
        toast(`Not cancelled: ${errorMessage(error)}`);
      } finally {
        mark(nodeId, false);
      }
    },
    [api, pipelineId, mark, toast],
  );
  const cancelPipeline = useCallback(async () => {
    mark("cancel", true);
    try {
      const answer = await api.cancelPipeline(pipelineId);
      if (answer.status === "cancelled") toast(answer.cancelled.length ? `Cancelled ${answer.cancelled.length} node(s)` : "Nothing was running", "info");
    } catch (error) {
      toast(`Not cancelled: ${errorMessage(error)}`);
    } finally {
      mark("cancel", false);
    }
  }, [api, pipelineId, mark, toast]);

  const setBudget = useCallback(
    async (maxCost: number | null) => {
      try {
        const { pipeline } = await api.setBudget(pipelineId, maxCost);
        dispatch({ kind: "pipeline", pipeline });
        return true;
      } catch (error) {
        toast(`Budget not saved: ${errorMessage(error)}`);
        return false;
      }
    },
    [api, pipelineId, dispatch, toast],
  );

  const estimate: ShownEstimate = useMemo(() => {
    if (gatewayEstimate.phase === "ok")
      return {
        ...gatewayEstimate.estimate,
        maxCost: budget,
        withinBudget: budget === null || gatewayEstimate.estimate.estimatedTotalCost <= budget,
        origin: "gateway",
      };
    return browserEstimate(state.nodes, budget);
  }, [gatewayEstimate, state.nodes, budget]);

  const dismissRefusal = useCallback(() => setRefusal(null), []);
  // One object per change of what it holds: node cards read it through the editor context.
  return useMemo(
    () => ({
      problems,
      problemsByNode,
      serverProblemNodes,
      refusal,
      dismissRefusal,
      budget,
      setBudget,
      estimate,
      gatewayEstimate,
      refreshEstimate,
      runAll,
      runToHere,
      retry,
      cancelNode,
      cancelPipeline,
      busy,
      history,
      historyError,
      historyOpen,
      setHistoryOpen,
      refreshHistory,
    }),
    [
      problems,
      problemsByNode,
      serverProblemNodes,
      refusal,
      dismissRefusal,
      budget,
      setBudget,
      estimate,
      gatewayEstimate,
      refreshEstimate,
      runAll,
      runToHere,
      retry,
      cancelNode,
      cancelPipeline,
      busy,
      history,
      historyError,
      historyOpen,
      refreshHistory,
    ],
  );
}
