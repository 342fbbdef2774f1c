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
/** After the stream dropped: reopen soon (the gateway's shutdown hint is 1 s). */
const RECONNECT_MS = 1000;
/** While the gateway cannot mint a stream token (it is down): try again every two seconds. */
const REOPEN_MS = 2000;

/**
 * One pipeline, live: the structure from GET /pipelines/:id, then the execution state from the SSE
 * stream (a `snapshot`, then `node` events). After a dropped connection we reopen the stream ourselves with
 * a new stream token and ?lastEventId=, so the gateway replays exactly the missed events.
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

    // Every (re)connect mints a fresh stream token: the browser's own reconnect would reuse the old URL,
    // whose token is only good for opening a stream within a minute. So on any error the stream is closed
    // and reopened here, resuming after the last event seen (?lastEventId=, replayed by the gateway).
    const open = async () => {
      let url: string;
      try {
        url = await api.streamUrl(pipelineId, lastEventId.current);
      } catch {
        if (stopped) return;
        setLive("reconnecting");
        reopen = setTimeout(() => void open(), REOPEN_MS);
        return;
      }
      if (stopped) return;
      source = new EventSource(url);
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
        source?.close();
        clearTimeout(reopen);
        reopen = setTimeout(() => void open(), RECONNECT_MS);
      };
    };
    void open();
    return () => {
      stopped = true;
      clearTimeout(reopen);
      source?.close();
    };
  }, [ready, api, pipelineId]);

  const apply = useCallback((action: GraphAction) => dispatch(action), []);
  return { state, load, live, dispatch: apply, retry: fetchStructure } as {
    state: GraphState;
    load: Load;
    live: LiveStatus;
    dispatch: (a: GraphAction) => void;
    retry: () => Promise<void>;
  };
}
