"use client";

import { useState } from "react";
import { downstreamIds, upstreamIds } from "@vp/flow-graph";
import { formatCost } from "@/lib/format";
import type { EditorNode } from "@/lib/graph-state";
import { cacheInfo, problemText } from "@/lib/runs";
import { useEditor } from "./context";
import { RetryIcon, RunToHereIcon, StopIcon } from "./run-controls";

const stop = (e: { stopPropagation(): void }) => e.stopPropagation();

/** Pending with an input not completed yet: the play button cannot run it, "run to here" runs what it needs first. */
export function waitingUpstream(node: EditorNode, lookup: ReadonlyMap<string, { status: string }>): boolean {
  return node.status === "pending" && upstreamIds(node).some((id) => lookup.get(id)?.status !== "completed");
}

/** The card's run buttons beside the play button: run to here (pending), cancel (queued, running), retry (failed, cancelled). */
export function CardRunButtons({ node }: { node: EditorNode }) {
  const { runs, nodes, blocked } = useEditor();
  const busy = runs.busy.has(node.id);
  if (node.status === "pending") {
    // With every input completed the play button runs it; while something upstream has to run first, this replaces it.
    if (!waitingUpstream(node, nodes) || blocked.has(node.id)) return null;
    const waiting = upstreamIds(node)
      .filter((id) => nodes.get(id)?.status !== "completed")
      .map((id) => `"${nodes.get(id)?.title ?? id}"`);
    return (
      <button
        type="button"
        className="node-action run-to-here nodrag"
        disabled={busy}
        title={`Run to here: this node and what it needs first (waiting for ${[...new Set(waiting)].join(", ")})`}
        aria-label={`Run to here: ${node.title}`}
        onClick={(e) => {
          stop(e);
          void runs.runToHere(node.id);
        }}
        data-testid={`run-to-here-${node.id}`}
      >
        <RunToHereIcon />
      </button>
    );
  }
  if (node.status === "queued" || node.status === "in_progress") {
    return (
      <button
        type="button"
        className="node-action cancel nodrag"
        disabled={busy}
        title="Cancel this node (its dependants in the run are cancelled too)"
        aria-label={`Cancel ${node.title}`}
        onClick={(e) => {
          stop(e);
          void runs.cancelNode(node.id);
        }}
        data-testid={`cancel-${node.id}`}
      >
        <StopIcon />
      </button>
    );
  }
  if (node.status === "failed" || node.status === "cancelled") {
    return (
      <button
        type="button"
        className="node-action retry nodrag"
        disabled={busy}
        title="Retry this node (the side panel can include its dependants)"
        aria-label={`Retry ${node.title}`}
        onClick={(e) => {
          stop(e);
          void runs.retry(node.id, false);
        }}
        data-testid={`retry-${node.id}`}
      >
        <RetryIcon />
      </button>
    );
  }
  return null;
}

/** A marker on a node a run would be refused for, with every reason (the gateway's after a refused run). */
export function ProblemMarker({ node }: { node: EditorNode }) {
  const { runs } = useEditor();
  const problems = runs.problemsByNode.get(node.id);
  if (!problems?.length) return null;
  const texts = problems.map(problemText);
  const origin = runs.serverProblemNodes.has(node.id) ? "gateway" : "browser";
  return (
    <div
      className={`node-problems origin-${origin}`}
      title={texts.join("\n")}
      role="note"
      data-testid={`problems-${node.id}`}
      data-count={problems.length}
      data-origin={origin}
    >
      {texts.slice(0, 2).map((t, i) => (
        <div key={i} className="node-problem" data-testid={`problem-${node.id}`}>
          <span aria-hidden>⚠ </span>
          {t}
        </div>
      ))}
      {texts.length > 2 && <div className="node-problem more">+{texts.length - 2} more</div>}
    </div>
  );
}

/** "cached · saved $0.12": the node completed from the cache instead of executing. */
export function CachedBadge({ node, prefix = "" }: { node: EditorNode; prefix?: string }) {
  const info = cacheInfo(node);
  if (!info) return null;
  const from = info.from ? `from node "${info.from.nodeId}"${info.from.pipelineId !== node.pipeline_id ? " of another pipeline" : ""}` : "";
  return (
    <span
      className="cached-badge"
      title={`Completed from the cache ${from}: not executed again, nothing paid. Saved ${formatCost(info.costSaved)}.`}
      data-testid={`${prefix}cached-${node.id}`}
      data-cost-saved={info.costSaved}
    >
      cached · saved {formatCost(info.costSaved)}
    </span>
  );
}

/** The side panel's run actions: run to here, cancel, retry with or without the dependants. */
export function PanelRunActions({ node }: { node: EditorNode }) {
  const { runs, nodes, blocked } = useEditor();
  const [downstream, setDownstream] = useState(true);
  const busy = runs.busy.has(node.id);
  const dependants = downstreamIds(nodes.values(), node.id).filter((id) => nodes.get(id)?.status !== "completed");
  if (node.status === "pending") {
    return (
      <div className="row panel-run-actions">
        <button
          type="button"
          className="button small"
          disabled={busy || blocked.has(node.id)}
          title={blocked.has(node.id) ? "This node or a node upstream of it is disabled: enable it to run this node" : undefined}
          onClick={() => void runs.runToHere(node.id)}
          data-testid="panel-run-to-here"
        >
          <RunToHereIcon /> Run to here
        </button>
        <span className="muted small">this node and whatever it needs first</span>
      </div>
    );
  }
  if (node.status === "queued" || node.status === "in_progress") {
    return (
      <div className="row panel-run-actions">
        <button type="button" className="button small danger" disabled={busy} onClick={() => void runs.cancelNode(node.id)} data-testid="panel-cancel">
          <StopIcon /> Cancel
        </button>
      </div>
    );
  }
  if (node.status === "failed" || node.status === "cancelled") {
    return (
      <div className="panel-run-actions">
        {dependants.length > 0 && (
          <label className="check small">
            <input type="checkbox" checked={downstream} onChange={(e) => setDownstream(e.target.checked)} data-testid="retry-downstream" /> Also rerun its{" "}
            {dependants.length} dependant{dependants.length === 1 ? "" : "s"} ({dependants.map((id) => nodes.get(id)?.title ?? id).join(", ")})
          </label>
        )}
        <button
          type="button"
          className="button small"
          disabled={busy}
          onClick={() => void runs.retry(node.id, dependants.length > 0 && downstream)}
          data-testid="panel-retry"
        >
          <RetryIcon /> Retry
        </button>
      </div>
    );
  }
  return null;
}
