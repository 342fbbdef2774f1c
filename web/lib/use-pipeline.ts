"use client";

import { useCallback, useEffect, useReducer, useRef, useState } from "react";
import { flushSync } from "react-dom";
import { ApiError, type Api } from "./api";
import { emptyGraph, graphReducer, type GraphAction, type GraphState, type StructureEvent } from "./graph-state";
import { openPipelineStream } from "./pipeline-stream";

export type Load = { phase: "loading" } | { phase: "ready" } | { phase: "error"; error: ApiError | Error; retryAt?: number };
/** live: the stream is open. reconnecting: it dropped; the browser is reconnecting with Last-Event-ID. */
export type LiveStatus = "connecting" | "live" | "reconnecting";

const RETRY_MS = 3000;

/**
 * One pipeline, live: the structure from GET /pipelines/:id, then the execution state from the SSE
 * stream (a `snapshot`, then `node` events). After a dropped connection we reopen the stream ourselves with
 * a new stream token and ?lastEventId=, so the gateway replays exactly the missed events.
 */
export function usePipeline(api: Api, pipelineId: string, onStructure?: (event: StructureEvent) => void) {
  const [state, dispatch] = useReducer(graphReducer, emptyGraph);
  const { load, retry } = useStructure(api, pipelineId, dispatch, state.stale);
  const live = usePipelineStream(api, pipelineId, load.phase === "ready", dispatch, onStructure);
  const apply = useCallback((action: GraphAction) => dispatch(action), []);
  return { state, load, live, dispatch: apply, retry } as {
    state: GraphState;
    load: Load;
    live: LiveStatus;
    dispatch: (a: GraphAction) => void;
    retry: () => Promise<void>;
  };
}

/**
 * The pipeline's structure (GET /pipelines/:id): loaded once, retried while the gateway is unreachable, and
 * reloaded when an event named a node this page does not know (`stale`: added in another window).
 */
function useStructure(api: Api, pipelineId: string, dispatch: (a: GraphAction) => void, stale: boolean) {
  const [load, setLoad] = useState<Load>({ phase: "loading" });
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
  }, [api, pipelineId, dispatch]);

  useEffect(() => {
    void fetchStructure();
  }, [fetchStructure]);

  useEffect(() => {
    if (load.phase !== "error" || !load.retryAt) return;
    const timer = setTimeout(() => void fetchStructure(), Math.max(0, load.retryAt - Date.now()));
    return () => clearTimeout(timer);
  }, [load, fetchStructure]);

  useEffect(() => {
    if (stale) void fetchStructure();
  }, [stale, fetchStructure]);
  return { load, retry: fetchStructure };
}

/** The execution state from the SSE stream once the structure is loaded, and whether the stream is live. */
function usePipelineStream(
  api: Api,
  pipelineId: string,
  ready: boolean,
  dispatch: (a: GraphAction) => void,
  onStructure?: (event: StructureEvent) => void,
): LiveStatus {
  const [live, setLive] = useState<LiveStatus>("connecting");
  const lastEventId = useRef<string | undefined>(undefined);
  const structureListener = useRef(onStructure);
  structureListener.current = onStructure;
  useEffect(() => {
    if (!ready) return;
    return openPipelineStream(api, pipelineId, lastEventId, {
      onOpen: () => setLive("live"),
      onReconnecting: () => setLive("reconnecting"),
      onSnapshot: ({ pipeline, stateVersions }) => flushSync(() => dispatch({ kind: "snapshot", pipeline, nodes: pipeline.nodes, stateVersions })),
      // Rendered one by one, so each status (queued, in progress, completed) is on screen at least once.
      onEvent: (event) => flushSync(() => dispatch({ kind: "event", event })),
      onStructure: (event) => {
        dispatch({ kind: "structure", event, own: event.client === api.clientId });
        structureListener.current?.(event);
      },
      onRevision: (revision) => dispatch({ kind: "revision", revision }),
    });
  }, [ready, api, pipelineId, dispatch]);
  return live;
}
