"use client";

import { useCallback, useMemo, useState } from "react";
import { errorMessage, type Api } from "@/lib/api";
import type { GraphAction } from "@/lib/graph-state";

type Mark = (key: string, on: boolean) => void;

interface RunActionDeps {
  api: Api;
  pipelineId: string;
  dispatch: (a: GraphAction) => void;
  toast: (message: string, kind?: "error" | "info") => void;
  /** A run was accepted: what a refusal said no longer holds. */
  started: () => void;
  /** A run was refused (or failed): show why. */
  refused: (action: string, error: unknown) => void;
}

/**
 * The run actions, each one request to the gateway (statuses then arrive over SSE). `busy` holds the actions
 * waiting for an answer: "all", "cancel", or a node id.
 */
export function useRunActions(deps: RunActionDeps) {
  const { busy, mark } = useBusy();
  const { runAll, runToHere, retry } = useRunRequests(deps, mark);
  const { cancelNode, cancelPipeline } = useCancel(deps, mark);
  const setBudget = useSetBudget(deps);
  return useMemo(
    () => ({ busy, runAll, runToHere, retry, cancelNode, cancelPipeline, setBudget }),
    [busy, runAll, runToHere, retry, cancelNode, cancelPipeline, setBudget],
  );
}

function useBusy() {
  const [busy, setBusy] = useState<ReadonlySet<string>>(new Set());
  const mark = useCallback((key: string, on: boolean) => {
    setBusy((s) => {
      const next = new Set(s);
      if (on) next.add(key);
      else next.delete(key);
      return next;
    });
  }, []);
  return { busy, mark };
}

/** Run all, run to here, retry: an accepted run clears the last refusal, a refused one shows the new one. */
function useRunRequests({ api, pipelineId, started, refused }: RunActionDeps, mark: Mark) {
  const run = useCallback(
    async (key: string, action: string, call: () => Promise<unknown>): Promise<boolean> => {
      mark(key, true);
      try {
        await call();
        started();
        return true;
      } catch (error) {
        refused(`${action} refused`, error);
        return false;
      } finally {
        mark(key, false);
      }
    },
    [mark, started, refused],
  );
  const runAll = useCallback(
    ({ force = false }: { force?: boolean } = {}) => run("all", "Run all", () => api.runAll(pipelineId, { force })),
    [api, pipelineId, run],
  );
  const runToHere = useCallback(
    async (nodeId: string) => {
      await run(nodeId, "Run to here", () => api.runToHere(pipelineId, nodeId));
    },
    [api, pipelineId, run],
  );
  const retry = useCallback(
    async (nodeId: string, downstream: boolean) => {
      await run(nodeId, "Retry", () => api.retryNode(pipelineId, nodeId, { downstream }));
    },
    [api, pipelineId, run],
  );
  return { runAll, runToHere, retry };
}

/** Cancelling one node or the whole pipeline; a failure is a toast, a cancelled pipeline says how many nodes. */
function useCancel({ api, pipelineId, toast }: RunActionDeps, mark: Mark) {
  const cancel = useCallback(
    async (key: string, call: () => Promise<void>) => {
      mark(key, true);
      try {
        await call();
      } catch (error) {
        toast(`Not cancelled: ${errorMessage(error)}`);
      } finally {
        mark(key, false);
      }
    },
    [mark, toast],
  );
  const cancelNode = useCallback(
    (nodeId: string) =>
      cancel(nodeId, async () => {
        await api.cancelNode(pipelineId, nodeId);
      }),
    [api, pipelineId, cancel],
  );
  const cancelPipeline = useCallback(
    () =>
      cancel("cancel", async () => {
        const answer = await api.cancelPipeline(pipelineId);
        if (answer.status === "cancelled") toast(answer.cancelled.length ? `Cancelled ${answer.cancelled.length} node(s)` : "Nothing was running", "info");
      }),
    [api, pipelineId, cancel, toast],
  );
  return { cancelNode, cancelPipeline };
}

/** The pipeline's budget (config.maxCost); resolves false (and says why) when it was not saved. */
function useSetBudget({ api, pipelineId, dispatch, toast }: RunActionDeps) {
  return useCallback(
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
}
