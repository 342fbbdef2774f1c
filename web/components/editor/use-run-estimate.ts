"use client";

import { useCallback, useEffect, useMemo, useState } from "react";
import type { Api } from "@/lib/api";
import type { EditorNode } from "@/lib/graph-state";
import { afterEstimateFailure, shownEstimate, type GatewayEstimate } from "@/lib/runs";

const ESTIMATE_DELAY_MS = 400;

/**
 * The estimate before a run: the gateway's (cache-aware), kept current as the graph (`structure`), its statuses
 * and the budget change. A gateway without the estimate route is not asked again, and the browser's estimate from
 * the price table stands in.
 */
export function useRunEstimate({
  api,
  pipelineId,
  nodes,
  budget,
  structure,
  statuses,
}: {
  api: Api;
  pipelineId: string;
  nodes: ReadonlyMap<string, EditorNode>;
  budget: number | null;
  structure: string;
  statuses: string;
}) {
  const [gatewayEstimate, setGatewayEstimate] = useState<GatewayEstimate>({ phase: "idle" });

  const refreshEstimate = useCallback(
    async ({ force = false }: { force?: boolean } = {}) => {
      setGatewayEstimate((g) => (g.phase === "ok" ? g : { phase: "loading" }));
      try {
        const answer = await api.estimate(pipelineId, { force });
        setGatewayEstimate({ phase: "ok", estimate: answer.estimate, problems: answer.problems ?? [] });
      } catch (error) {
        setGatewayEstimate((g) => afterEstimateFailure(g, error));
      }
    },
    [api, pipelineId],
  );

  const estimateMissing = gatewayEstimate.phase === "missing";
  // biome-ignore lint/correctness/useExhaustiveDependencies: structure, statuses and budget are triggers, not read in the effect.
  useEffect(() => {
    if (estimateMissing) return;
    const timer = setTimeout(() => void refreshEstimate(), ESTIMATE_DELAY_MS);
    return () => clearTimeout(timer);
  }, [estimateMissing, structure, statuses, budget, refreshEstimate]);

  const estimate = useMemo(() => shownEstimate(gatewayEstimate, nodes, budget), [gatewayEstimate, nodes, budget]);
  return useMemo(() => ({ estimate, gatewayEstimate, refreshEstimate }), [estimate, gatewayEstimate, refreshEstimate]);
}
