"use client";

import type { NodeType } from "@vp/contracts";
import { PALETTE } from "@/lib/node-types";
import { NodeTypeIcon } from "../icons";

/** The eight node types; a click adds one to the canvas. */
export function Palette({ onAdd, disabled }: { onAdd: (type: NodeType) => void; disabled?: boolean }) {
  return (
    <nav className="palette" aria-label="Node palette" data-testid="palette">
      <h2>Add a node</h2>
      {PALETTE.map((info) => (
        <button
          key={info.type}
          type="button"
          className="palette-item"
          onClick={() => onAdd(info.type)}
          disabled={disabled}
          title={info.description}
          data-testid={`palette-${info.type}`}
        >
          <span className="node-icon" style={{ color: info.color, background: info.tint }}>
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
