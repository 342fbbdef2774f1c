"use client";

import type { RunEstimate } from "@vp/contracts";
import { exactCost, formatCost } from "@/lib/format";
import type { EditorNode } from "@/lib/graph-state";
import { problemText } from "@/lib/runs";

/** Each node a run would execute (or take from the cache) with its cost; nodes up to date are left out. */
export function EstimateNodes({ estimate, nodes }: { estimate: RunEstimate; nodes: ReadonlyMap<string, EditorNode> }) {
  const shown = estimate.nodes.filter((n) => n.source !== "up-to-date" || n.costSaved);
  if (!shown.length) return null;
  return (
    <ul className="estimate-nodes" data-testid="estimate-nodes">
      {shown.map((n) => (
        <li key={n.nodeId} data-testid="estimate-node" data-node={n.nodeId} data-source={n.source}>
          <span className="estimate-node-title">
            <NodeName id={n.nodeId} nodes={nodes} />
          </span>
          <span className={`source source-${n.source}`}>{n.source === "execute" ? "runs" : n.source}</span>
          <span className="estimate-node-cost" title={exactCost(n.source === "cached" ? n.costSaved : n.estimatedCost)}>
            {n.source === "cached" ? `saves ${formatCost(n.costSaved ?? 0)}` : formatCost(n.estimatedCost)}
          </span>
        </li>
      ))}
    </ul>
  );
}

/** A node by its title; the id follows as secondary text when it differs (the id alone for a node not on the canvas). */
export function NodeName({ id, nodes }: { id: string; nodes: ReadonlyMap<string, EditorNode> }) {
  const title = nodes.get(id)?.title;
  if (!title || title === id) return <>{id}</>;
  return (
    <>
      {title}{" "}
      <span className="node-id muted" data-testid="node-id">
        {id}
      </span>
    </>
  );
}

/** Graph problems, each naming its node (a button that selects it). */
export function ProblemList({
  problems,
  nodes,
  select,
}: {
  problems: Array<{ nodeId: string; slot?: string; message: string }>;
  nodes: ReadonlyMap<string, EditorNode>;
  select: (id: string | null) => void;
}) {
  return (
    <ul className="problem-list">
      {problems.map((p, i) => (
        <li key={`${p.nodeId}-${p.slot ?? ""}-${i}`} data-testid="problem-item" data-node={p.nodeId}>
          <button type="button" className="link-like" onClick={() => select(nodes.has(p.nodeId) ? p.nodeId : null)}>
            <NodeName id={p.nodeId} nodes={nodes} />
          </button>
          <span>{problemText(p)}</span>
        </li>
      ))}
    </ul>
  );
}
