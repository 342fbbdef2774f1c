"use client";

import { useEffect, useMemo, useRef, useState } from "react";
import type { Api } from "@/lib/api";
import type { EditorNode } from "@/lib/graph-state";
import { outdatedSignature } from "@/lib/runs";

const REFRESH_DELAY_MS = 250;
const NONE: ReadonlySet<string> = new Set();

/**
 * Completed nodes whose result no longer matches the graph, as the gateway decides it from the cache key: asked on
 * load and again shortly after anything that can change the answer (an edit, a connection, a new result), so an
 * edited node and everything downstream of it show as outdated until a run makes them again.
 */
export function useOutdated(api: Api, pipelineId: string, nodes: ReadonlyMap<string, EditorNode>): ReadonlySet<string> {
  const [outdated, setOutdated] = useState<ReadonlySet<string>>(NONE);
  const signature = useMemo(() => outdatedSignature(nodes), [nodes]);
  const asked = useRef(0);
  useEffect(() => {
    const ask = ++asked.current;
    const timer = setTimeout(async () => {
      try {
        const { node_ids } = await api.outdated(pipelineId);
        if (ask === asked.current) setOutdated(node_ids.length ? new Set(node_ids) : NONE);
      } catch {
        // A failed read keeps what is on screen; the next change asks again.
      }
    }, REFRESH_DELAY_MS);
    return () => clearTimeout(timer);
  }, [api, pipelineId, signature]);
  // A node that is no longer completed is not outdated, whatever the last answer said.
  return useMemo(() => {
    if (!outdated.size) return NONE;
    const current = new Set([...outdated].filter((id) => nodes.get(id)?.status === "completed"));
    return current.size ? current : NONE;
  }, [outdated, nodes]);
}
