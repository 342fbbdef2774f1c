"use client";

import type { NodeType } from "@vp/contracts";
import { PALETTE } from "@/lib/node-types";
import { NodeTypeIcon } from "../icons";

/** What a palette item carries when dragged onto the canvas. */
export const NODE_TYPE_MIME = "application/x-video-pipelines-node-type";

/** The node types; a click adds one beside the selected node, a drag drops one where it is let go. */
export function Palette({ onAdd, disabled, readOnly }: { onAdd: (type: NodeType) => void; disabled?: boolean; readOnly?: string | null }) {
  if (readOnly) {
    return (
      <nav className="palette" aria-label="Node palette" data-testid="palette">
        <h2>Read only</h2>
        <p className="muted small" data-testid="palette-read-only">
          {readOnly}
        </p>
      </nav>
    );
  }
  return (
    <nav className="palette" aria-label="Node palette" data-testid="palette">
      <h2>Add a node</h2>
      {PALETTE.map((info) => (
        <button
          key={info.type}
          type="button"
          className="palette-item"
          onClick={() => onAdd(info.type)}
          draggable={!disabled}
          onDragStart={(e) => {
            e.dataTransfer.setData(NODE_TYPE_MIME, info.type);
            e.dataTransfer.effectAllowed = "copy";
          }}
          disabled={disabled}
          title={info.description}
          data-testid={`palette-${info.type}`}
        >
          <span className="node-icon" style={{ ["--accent" as string]: info.color, ["--tint" as string]: info.tint }}>
            <NodeTypeIcon type={info.type} />
          </span>
          <span className="palette-text">
            <span className="palette-label">{info.label}</span>
            <span className="palette-desc">{info.description}</span>
          </span>
        </button>
      ))}
    </nav>
  );
}
