"use client";

import { useCallback, useEffect, useReducer, useRef, useState } from "react";
import { flushSync } from "react-dom";
import { ApiError, type Api, type ApiNode } from "./api";
import { emptyGraph, graphReducer, type GraphAction, type GraphState, type NodeEvent } from "./graph-state";
import type { SerializedPipeline } from "@vp/contracts";

export type Load = { phase: "loading" } | { phase: "ready" } | { phase: "error"; error: ApiError | Error; retryAt?: number };
/** live: the stream is open. reconnecting: it dropped; the browser is reconnecting with Last-Event-ID. */
export type LiveStatus = "connecting" | "live" | "reconnecting";

const RETRY_MS = 3000;
/** If the browser gives up on the stream (it does after a non-200 answer), we reopen it ourselves. */
const REOPEN_MS = 2000;

/**
 * One pipeline, live: the structure from GET /pipelines/:id, then the execution state from the SSE
 * stream (a `snapshot`, then `node` events). The browser's EventSource resends Last-Event-ID when it
 * reconnects, so after a dropped connection the gateway replays exactly the missed events; if the browser
 * closes the stream for good we reopen it with ?lastEventId= ourselves.
 */
export function usePipeline(api: Api, pipelineId: string) {
  const [state, dispatch] = useReducer(graphReducer, emptyGraph);
  const [load, setLoad] = useState<Load>({ phase: "loading" });
  const [live, setLive] = useState<LiveStatus>("connecting");
  const lastEventId = useRef<string | undefined>(undefined);

  const fetchStructure = useCallback(async () => {
    try {
      const { pipeline } = await api.getPipeline(pipelineId);
      dispatch({ kind: "loaded", pipeline, nodes: pipeline.nodes });
      setLoad({ phase: "ready" });
    } catch (error) {
      const retry = error instanceof ApiError && error.unreachable;
      setLoad((current) =>
        current.phase === "ready" ? current : { phase: "error", error: error as Error, retryAt: retry ? Date.now() + RETRY_MS : undefined },
      );
    }
  }, [api, pipelineId]);

  useEffect(() => {
    void fetchStructure();
  }, [fetchStructure]);

  useEffect(() => {
    if (load.phase !== "error" || !load.retryAt) return;
    const timer = setTimeout(() => void fetchStructure(), Math.max(0, load.retryAt - Date.now()));
    return () => clearTimeout(timer);
  }, [load, fetchStructure]);

  // An event named a node this page does not know (added in another window): reload the structure.
  useEffect(() => {
    if (state.stale) void fetchStructure();
  }, [state.stale, fetchStructure]);

  const ready = load.phase === "ready";
  useEffect(() => {
    if (!ready) return;
    let source: EventSource | null = null;
    let reopen: ReturnType<typeof setTimeout> | undefined;
    let stopped = false;

    const open = () => {
      const resume = lastEventId.current;
      source = new EventSource(`${api.eventsUrl(pipelineId)}${resume ? `?lastEventId=${encodeURIComponent(resume)}` : ""}`);
      source.onopen = () => setLive("live");
      source.addEventListener("snapshot", (event) => {
        const message = event as MessageEvent<string>;
        if (message.lastEventId) lastEventId.current = message.lastEventId;
        const data = JSON.parse(message.data) as { pipeline: SerializedPipeline & { nodes: ApiNode[] }; stateVersions?: Record<string, number> };
        flushSync(() => dispatch({ kind: "snapshot", pipeline: data.pipeline, nodes: data.pipeline.nodes, stateVersions: data.stateVersions }));
      });
      source.addEventListener("node", (event) => {
        const message = event as MessageEvent<string>;
        if (message.lastEventId) lastEventId.current = message.lastEventId;
        // Rendered one by one, so each status (queued, in progress, completed) is on screen at least once.
        flushSync(() => dispatch({ kind: "event", event: JSON.parse(message.data) as NodeEvent }));
      });
      source.onerror = () => {
        if (stopped) return;
        setLive("reconnecting");
        if (source?.readyState === EventSource.CLOSED) {
          source.close();
          reopen = setTimeout(open, REOPEN_MS);
        }
      };
    };
    open();
    return () => {
      stopped = true;
      clearTimeout(reopen);
      source?.close();
    };
  }, [ready, api, pipelineId]);

  const apply = useCallback((action: GraphAction) => dispatch(action), []);
  return { state, load, live, dispatch: apply, retry: fetchStructure } as { state: GraphState; load: Load; live: LiveStatus; dispatch: (a: GraphAction) => void; retry: () => Promise<void> };
}
