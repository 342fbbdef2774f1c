"use client";

import { useCallback, useEffect, useMemo, useState } from "react";
import type { RunRecord } from "@vp/contracts";
import { errorMessage, type Api } from "@/lib/api";

const HISTORY_DELAY_MS = 300;
const HISTORY_POLL_MS = 1500;

/**
 * The run history column: loaded when opened, refreshed when a node's status changes on the stream
 * (`statuses` changes), polled while a run is still marked running.
 */
export function useRunHistory(api: Api, pipelineId: string, statuses: string) {
  const [history, setHistory] = useState<RunRecord[] | null>(null);
  const [historyError, setHistoryError] = useState<string | null>(null);
  const [historyOpen, setHistoryOpen] = useState(false);

  const refreshHistory = useCallback(async () => {
    try {
      const { runs } = await api.listRuns(pipelineId);
      setHistory(runs);
      setHistoryError(null);
    } catch (error) {
      setHistoryError(errorMessage(error));
    }
  }, [api, pipelineId]);

  // biome-ignore lint/correctness/useExhaustiveDependencies: `statuses` is the trigger, not read in the effect.
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

  return useMemo(() => ({ history, historyError, historyOpen, setHistoryOpen, refreshHistory }), [history, historyError, historyOpen, refreshHistory]);
}
