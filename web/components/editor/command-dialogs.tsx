"use client";

import { useEffect, useMemo, useRef, useState } from "react";
import type { NodeType } from "@vp/contracts";
import { PALETTE } from "@/lib/node-types";
import { NodeTypeIcon } from "../icons";

/** The editor's keyboard shortcuts, as the `?` sheet lists them. */
export const SHORTCUTS: Array<[string, string]> = [
  ["Ctrl+Z", "Undo the last edit"],
  ["Ctrl+Shift+Z or Ctrl+Y", "Redo"],
  ["Ctrl+C / Ctrl+V", "Copy the selected nodes / paste them (into this or another pipeline)"],
  ["Ctrl+D", "Duplicate the selected nodes"],
  ["Ctrl+A", "Select every node"],
  ["Shift+drag", "Select the nodes in a box"],
  ["Delete or Backspace", "Delete the selected nodes or connection"],
  ["Ctrl+K or /", "Find a node type and add it"],
  ["Right-click a node", "Its actions: run to here, duplicate, disable, delete"],
  ["Escape", "Close a dialog or the panel, deselect"],
  ["?", "This list"],
];

type Dialog = "shortcuts" | "search" | null;

/** `?` opens the shortcut sheet, Ctrl+K or `/` the node search; never while typing in a field. */
export function useCommandDialogs() {
  const [open, setOpen] = useState<Dialog>(null);
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      const target = event.target as HTMLElement | null;
      if (target?.closest("input, textarea, select, [contenteditable='true']")) return;
      if (event.key === "?" && !event.ctrlKey && !event.metaKey) {
        event.preventDefault();
        setOpen("shortcuts");
      } else if ((event.key.toLowerCase() === "k" && (event.ctrlKey || event.metaKey)) || (event.key === "/" && !event.ctrlKey && !event.metaKey)) {
        event.preventDefault();
        setOpen("search");
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);
  return { open, setOpen };
}

function Modal({ label, onClose, children, testId }: { label: string; onClose: () => void; children: React.ReactNode; testId: string }) {
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => event.key === "Escape" && onClose();
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [onClose]);
  return (
    <div className="modal-backdrop" onPointerDown={(e) => e.target === e.currentTarget && onClose()}>
      <div className="modal command-dialog" role="dialog" aria-modal="true" aria-label={label} data-testid={testId}>
        {children}
      </div>
    </div>
  );
}

export function ShortcutSheet({ onClose }: { onClose: () => void }) {
  return (
    <Modal label="Keyboard shortcuts" onClose={onClose} testId="shortcut-sheet">
      <h2>Keyboard shortcuts</h2>
      <dl className="shortcuts">
        {SHORTCUTS.map(([keys, what]) => (
          <div key={keys}>
            <dt>
              <kbd>{keys}</kbd>
            </dt>
            <dd>{what}</dd>
          </div>
        ))}
      </dl>
    </Modal>
  );
}

/** Type to find a node type by its name or description; Enter (or a click) adds the first match, arrows pick another. */
export function NodeSearch({
  onAdd,
  onClose,
  types,
  title = "Add a node",
}: {
  onAdd: (type: NodeType) => void;
  onClose: () => void;
  /** Only these types (a connection dropped on the canvas: the types that can take its output). */
  types?: NodeType[];
  title?: string;
}) {
  const [query, setQuery] = useState("");
  const [index, setIndex] = useState(0);
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => input.current?.focus(), []);
  const matches = useMemo(() => {
    const words = query.toLowerCase().split(/\s+/).filter(Boolean);
    return PALETTE.filter(
      (info) => (!types || types.includes(info.type)) && words.every((w) => `${info.label} ${info.description} ${info.type}`.toLowerCase().includes(w)),
    );
  }, [query, types]);
  const choose = (type: NodeType) => {
    onClose();
    onAdd(type);
  };
  return (
    <Modal label={title} onClose={onClose} testId="node-search">
      <h2>{title}</h2>
      <input
        ref={input}
        className="input"
        placeholder="Find a node type: voiceover, merge, captions…"
        value={query}
        aria-label="Node type"
        data-testid="node-search-input"
        onChange={(e) => {
          setQuery(e.target.value);
          setIndex(0);
        }}
        onKeyDown={(e) => {
          if (e.key === "ArrowDown") setIndex((i) => Math.min(i + 1, matches.length - 1));
          else if (e.key === "ArrowUp") setIndex((i) => Math.max(i - 1, 0));
          else if (e.key === "Enter" && matches[index]) choose(matches[index]!.type);
          else if (e.key === "Escape") onClose();
          else return;
          e.preventDefault();
        }}
      />
      <ul className="search-results">
        {matches.map((info, i) => (
          <li key={info.type}>
            <button
              type="button"
              className={i === index ? "active" : undefined}
              onClick={() => choose(info.type)}
              data-testid={`node-search-item-${info.type}`}
            >
              <span className="node-icon" style={{ ["--accent" as string]: info.color, ["--tint" as string]: info.tint }}>
                <NodeTypeIcon type={info.type} />
              </span>
              <span>
                <strong>{info.label}</strong> <span className="muted small">{info.description}</span>
              </span>
            </button>
          </li>
        ))}
        {matches.length === 0 && <li className="muted small">No node type matches “{query}”</li>}
      </ul>
    </Modal>
  );
}
