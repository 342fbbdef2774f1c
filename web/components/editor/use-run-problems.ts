"use client";

import { useMemo, useRef } from "react";
import type { GraphProblem, Variable } from "@vp/contracts";
import { variableProblems } from "@vp/flow-graph/variables";
import type { EditorNode } from "@/lib/graph-state";
import { groupProblems, mergeProblems, pipelineProblems } from "@/lib/runs";

/** Problems a refused run listed, with the graph (its structure signature) they were found in. */
export type ServerProblems = { problems: GraphProblem[]; signature: string } | null;

/**
 * Every problem a run would be refused for: the browser's own check of the graph (its placeholders and bound assets
 * against the declared variables included), and the gateway's from its last refusal, which stand until the graph
 * they were found in changes.
 */
export function useRunProblems(nodes: ReadonlyMap<string, EditorNode>, structure: string, server: ServerProblems, variables: readonly Variable[] = []) {
  // Checked when the structure (or which nodes are completed) changes, not on every progress event: the check
  // is not free on a large graph, and progress cannot change its answer.
  const nodesRef = useRef(nodes);
  nodesRef.current = nodes;
  const live = useMemo(
    () => (structure ? mergeProblems(pipelineProblems(nodesRef.current), variableProblems(nodesRef.current.values(), variables)) : []),
    [structure, variables],
  );

  const serverProblems = useMemo(() => (server && server.signature === structure ? server.problems : []), [server, structure]);
  const problems = useMemo(() => mergeProblems(serverProblems, live), [serverProblems, live]);
  const problemsByNode = useMemo(() => groupProblems(problems), [problems]);
  const serverProblemNodes = useMemo(() => new Set(serverProblems.map((p) => p.nodeId)), [serverProblems]);
  return useMemo(() => ({ problems, problemsByNode, serverProblemNodes }), [problems, problemsByNode, serverProblemNodes]);
}
