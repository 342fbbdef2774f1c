"use client";

import { useMemo, useRef } from "react";
import type { GraphProblem } from "@vp/contracts";
import type { EditorNode } from "@/lib/graph-state";
import { groupProblems, mergeProblems, pipelineProblems } from "@/lib/runs";

/** Problems a refused run listed, with the graph (its structure signature) they were found in. */
export type ServerProblems = { problems: GraphProblem[]; signature: string } | null;

/**
 * Every problem a run would be refused for: the browser's own check of the graph, and the gateway's from its last
 * refusal, which stand until the graph they were found in changes.
 */
export function useRunProblems(nodes: ReadonlyMap<string, EditorNode>, structure: string, server: ServerProblems) {
  // Checked when the structure (or which nodes are completed) changes, not on every progress event: the check
  // is not free on a large graph, and progress cannot change its answer.
  const nodesRef = useRef(nodes);
  nodesRef.current = nodes;
  const live = useMemo(() => (structure ? pipelineProblems(nodesRef.current) : []), [structure]);

  const serverProblems = useMemo(() => (server && server.signature === structure ? server.problems : []), [server, structure]);
  const problems = useMemo(() => mergeProblems(serverProblems, live), [serverProblems, live]);
  const problemsByNode = useMemo(() => groupProblems(problems), [problems]);
  const serverProblemNodes = useMemo(() => new Set(serverProblems.map((p) => p.nodeId)), [serverProblems]);
  return useMemo(() => ({ problems, problemsByNode, serverProblemNodes }), [problems, problemsByNode, serverProblemNodes]);
}
