"use client";

import { memo } from "react";
import { Handle, Position, useStore, type NodeProps } from "@xyflow/react";
import { outputMediaType, type MediaType } from "@vp/contracts";
import { computeCostNote, estimateNode, isAiType, localDraftLabel } from "@/lib/ai";
import { exactCost, formatCost, formatDuration } from "@/lib/format";
import { inputSlots, MEDIA_LABEL, NODE_TYPE_INFO } from "@/lib/node-types";
import type { EditorNode } from "@/lib/graph-state";
import { NodeTypeIcon, PlayIcon } from "../icons";
import { AssetText, AssetUpload, isTextAsset } from "./asset-body";
import { useEditor } from "./context";
import { CachedBadge, CardRunButtons, ProblemMarker, waitingUpstream } from "./node-run-actions";
import { OutputPreview } from "./output-preview";
import { ProgressBar, runnability, StatusBadge } from "./status";

/** The node card's header: icon, title and type, status badge, and the play button when the node can run. */
function NodeHeader({ node, compact }: { node: EditorNode; compact: boolean }) {
  const { lookup, execute, executing, outdated } = useEditor();
  const info = NODE_TYPE_INFO[node.type];
  const { canRun, reason } = runnability(node, lookup);
  const busy = executing.has(node.id);
  return (
    <div className="node-header">
      <span className="node-icon" style={{ ["--accent" as string]: info.color, ["--tint" as string]: info.tint }}>
        <NodeTypeIcon type={node.type} />
      </span>
      <div className="node-titles">
        {compact ? (
          // Zoomed out, the title is drawn large in the body's place; this keeps the header's height.
          <div className="node-title-space" aria-hidden>
            {node.title}
          </div>
        ) : (
          <NodeTitle node={node} />
        )}
        <div className="node-type">{info.label}</div>
      </div>
      <div className="node-actions">
        <StatusBadge status={node.status} outdated={outdated.has(node.id)} testId={`status-${node.id}`} />
        {node.status === "pending" && !node.disabled && !waitingUpstream(node, lookup) && (
          <button
            type="button"
            className="play nodrag"
            disabled={!canRun || busy}
            title={canRun ? "Run this node" : reason}
            aria-label={canRun ? `Run ${node.title}` : `Cannot run ${node.title}: ${reason}`}
            onClick={(e) => {
              e.stopPropagation();
              void execute(node.id);
            }}
            data-testid={`execute-${node.id}`}
          >
            <PlayIcon />
          </button>
        )}
        <CardRunButtons node={node} />
      </div>
    </div>
  );
}

function NodeTitle({ node, compact }: { node: EditorNode; compact?: boolean }) {
  return (
    <div className={`node-title${compact ? " compact-title" : ""}`} title={node.title} data-testid={`node-title-${node.id}`}>
      {node.title}
    </div>
  );
}

/** A visible "local draft" label on outputs made by a local provider (output.provider = "local"). */
export function LocalDraftBadge({ node, prefix = "" }: { node: EditorNode; prefix?: string }) {
  const label = localDraftLabel(node.output as Record<string, unknown> | null);
  if (!label) return null;
  return (
    <span
      className="draft-badge"
      title="Made on this machine by a local stand-in provider: a draft, not the paid provider's result"
      data-testid={`${prefix}local-draft-${node.id}`}
    >
      {label}
    </span>
  );
}

/** Footer text: the real cost once known, else (AI nodes) the estimate before running. */
function CostLine({ node }: { node: EditorNode }) {
  const { lookup } = useEditor();
  const metadata = node.metadata ?? {};
  const duration = node.output?.duration !== undefined ? ` · ${formatDuration(node.output.duration)}` : "";
  // A local provider's amount is compute on this machine, not a provider's price: said so, exact on hover.
  const local = (metadata.provider ?? node.output?.provider ?? node.config?.provider ?? "local") === "local" && isAiType(node.type);
  if (metadata.cost !== undefined) {
    return (
      <span
        className="small muted"
        data-testid={`cost-${node.id}`}
        data-cost={metadata.cost}
        title={local ? computeCostNote(exactCost(metadata.cost)) : exactCost(metadata.cost)}
      >
        {formatCost(metadata.cost)}
        {local && " compute"}
        {duration}
      </span>
    );
  }
  const estimate = estimateNode(node, lookup);
  if (estimate) {
    const compute = estimate.provider === "local";
    return (
      <span
        className="small muted"
        data-testid={`estimate-${node.id}`}
        data-estimate={estimate.usd}
        title={compute ? computeCostNote(exactCost(estimate.usd)) : `Estimated with the ${estimate.provider} provider's price: ${exactCost(estimate.usd)}`}
      >
        est. {formatCost(estimate.usd)}
        {compute && " compute"}
      </span>
    );
  }
  return (
    <span className="small muted" data-testid={`cost-${node.id}`}>
      —{duration}
    </span>
  );
}

/**
 * Below this zoom a card's small text is unreadable: cards show their title large in place of the body (wrapped inside
 * the card, which keeps its size) and their status enlarged, nothing else.
 */
export const COMPACT_ZOOM = 0.6;

function NodeCardImpl({ id, selected }: NodeProps) {
  const { nodes, runs } = useEditor();
  // A boolean selector: cards re-render when the zoom crosses the threshold, not on every zoom step.
  const compact = useStore((s) => s.transform[2] < COMPACT_ZOOM);
  const node = nodes.get(id);
  if (!node) return null;
  const hasProblems = !!runs.problemsByNode.get(id)?.length;
  const info = NODE_TYPE_INFO[node.type];
  const slots = inputSlots(node.type);
  const produces = outputMediaType(node.type, node.asset as { type?: MediaType } | null);
  const metadata = node.metadata ?? {};
  const running = node.status === "in_progress";
  const isAsset = node.type === "asset";

  return (
    <div
      className={`node-card status-${node.status}${selected ? " selected" : ""}${hasProblems ? " has-problems" : ""}${node.disabled ? " disabled" : ""}${compact ? " compact" : ""}`}
      style={{ ["--accent" as string]: info.color, ["--tint" as string]: info.tint }}
      data-testid={`node-${node.id}`}
      data-node-type={node.type}
    >
      <NodeHeader node={node} compact={compact} />

      {slots.length > 0 && (
        <div className="node-slots">
          {slots.map((slot) => {
            const count = node.inputs?.[slot.slot]?.length ?? 0;
            return (
              <div className="node-slot" key={slot.slot} data-testid={`slot-${node.id}-${slot.slot}`}>
                <Handle type="target" position={Position.Left} id={slot.slot} className="handle handle-in" />
                <span className="slot-name">{slot.slot}</span>
                <span className={`slot-hint${count < slot.min ? " short" : ""}`} title={slot.description}>
                  {count} of {slot.hint}
                </span>
              </div>
            );
          })}
        </div>
      )}

      <div className="node-body">
        {compact && <NodeTitle node={node} compact />}
        {node.disabled && (
          <span className="badge disabled-badge" data-testid={`disabled-${node.id}`} title="Switched off: runs skip it and everything downstream of it">
            Disabled
          </span>
        )}
        <CachedBadge node={node} />
        {node.status === "completed" && node.output ? (
          <div className={`output-wrap output-${node.output.type}`}>
            <LocalDraftBadge node={node} />
            <OutputPreview node={node} />
          </div>
        ) : isAsset && isTextAsset(node) ? (
          <AssetText node={node} rows={4} />
        ) : isAsset ? (
          <AssetUpload node={node} />
        ) : (
          <div className="placeholder small">{running ? "Working…" : node.status === "queued" ? "Queued, starting soon…" : "The output shows here"}</div>
        )}
      </div>

      {running && (
        <div className="node-progress">
          <ProgressBar percent={metadata.progress} testId={`progress-${node.id}`} label={`${node.title} progress`} />
          <span className="small">{metadata.progress !== undefined ? `${Math.round(metadata.progress)}%` : "started"}</span>
        </div>
      )}
      {(node.status === "failed" || node.status === "cancelled") && metadata.error && (
        <div className={`node-error${node.status === "cancelled" ? " cancelled" : ""}`} title={metadata.error} data-testid={`error-${node.id}`}>
          {metadata.error}
        </div>
      )}
      <ProblemMarker node={node} />

      <div className="node-footer">
        <CostLine node={node} />
        <span className="out-label small">{produces ? `${MEDIA_LABEL[produces]} out` : "out"}</span>
        <Handle type="source" position={Position.Right} id="out" className="handle handle-out" />
      </div>
    </div>
  );
}

export const NodeCard = memo(NodeCardImpl);
