"use client";

import { useEffect } from "react";
import { useEditor } from "./context";

export interface MenuAt {
  id: string;
  x: number;
  y: number;
}

/** A node's context menu (right-click): run to here, duplicate, disable or enable, delete. Closes on any choice, click or Escape. */
export function NodeMenu({ at, onClose }: { at: MenuAt; onClose: () => void }) {
  const { nodes, runs, duplicate, updateNode, removeNode, select, blocked } = useEditor();
  const node = nodes.get(at.id);
  useEffect(() => {
    const close = (event: Event) => {
      if (event instanceof KeyboardEvent && event.key !== "Escape") return;
      if (event.target instanceof Element && event.target.closest(".node-menu")) return;
      onClose();
    };
    window.addEventListener("keydown", close);
    window.addEventListener("pointerdown", close);
    return () => {
      window.removeEventListener("keydown", close);
      window.removeEventListener("pointerdown", close);
    };
  }, [onClose]);
  if (!node) return null;
  const running = node.status === "queued" || node.status === "in_progress";
  const item = (label: string, action: () => unknown, options: { disabled?: boolean; danger?: boolean; testId: string }) => (
    <button
      type="button"
      role="menuitem"
      className={`node-menu-item${options.danger ? " danger" : ""}`}
      disabled={options.disabled}
      data-testid={options.testId}
      onClick={() => {
        onClose();
        void action();
      }}
    >
      {label}
    </button>
  );
  return (
    <div className="node-menu" role="menu" aria-label={`${node.title} actions`} style={{ left: at.x, top: at.y }} data-testid="node-menu">
      {item("Open settings", () => select(node.id), { testId: "menu-open" })}
      {item("Run to here", () => runs.runToHere(node.id), { disabled: node.status !== "pending" || blocked.has(node.id), testId: "menu-run-to-here" })}
      {item("Duplicate", () => duplicate([node.id]), { testId: "menu-duplicate" })}
      {item(node.disabled ? "Enable" : "Disable", () => updateNode(node.id, { disabled: !node.disabled }), { testId: "menu-toggle-disabled" })}
      {item("Delete", () => removeNode(node.id), { disabled: running, danger: true, testId: "menu-delete" })}
    </div>
  );
}
