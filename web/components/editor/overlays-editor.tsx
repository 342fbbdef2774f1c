"use client";

import { useEffect, useRef, useState } from "react";
import { DEFAULT_CORNERS, errorCell, parseCells, POSITIONS, toValue, withCell, type Cells } from "@/lib/overlays";
import { OverlayPlacement } from "./overlay-placement";

/**
 * compose-video's `overlays` config as one card per overlay (position preset or x/y, size, start, corners,
 * border) instead of raw JSON. It edits the same value the config form validates with the contracts'
 * schema: the JSON of the overlays array, so schema errors still show under the field. Above the cards, the
 * placement preview edits the same cells by dragging the overlays over a frame of the background.
 */
export function OverlaysEditor({
  value,
  onChange,
  overlayCount,
  inputs,
  error,
}: {
  value: string;
  onChange: (value: string) => void;
  overlayCount: number;
  /** The node's inputs: the background's frame and each overlay's picture size for the preview. */
  inputs?: Record<string, string[]>;
  error?: string;
}) {
  // The schema's error path ("0.size: …") marks the one input it is about.
  const bad = errorCell(error);
  const [rows, setRows] = useState<Cells[] | null>(() => parseCells(value));
  const emitted = useRef(value);
  useEffect(() => {
    if (value !== emitted.current) {
      emitted.current = value;
      setRows(parseCells(value));
    }
  }, [value]);

  if (rows === null) {
    // Not an array of objects (hand-written JSON): edit it as text.
    return <textarea rows={5} value={value} onChange={(e) => onChange(e.target.value)} data-testid="field-overlays" />;
  }

  const count = Math.max(1, overlayCount, rows.length);
  const set = (index: number, key: string, cell: string) => setCells(index, { [key]: cell });
  const setCells = (index: number, cells: Cells) => {
    const next = Object.entries(cells).reduce((r, [key, cell]) => withCell(r, index, key, cell), rows);
    setRows(next);
    const v = toValue(next);
    emitted.current = v;
    onChange(v);
  };

  return (
    <div className="overlays" data-testid="overlays-editor">
      <OverlayPlacement rows={rows} count={count} inputs={inputs} setCells={setCells} />
      {Array.from({ length: count }, (_, i) => (
        <OverlayCard
          key={i}
          index={i}
          row={rows[i] ?? {}}
          connected={i < overlayCount}
          invalidKey={bad?.index === i ? bad.key : null}
          set={(key, cell) => set(i, key, cell)}
        />
      ))}
    </div>
  );
}

/** One overlay: its position (x and y for a custom one), size, start, corner radius and border. */
function OverlayCard({
  index: i,
  row,
  connected,
  invalidKey,
  set,
}: {
  index: number;
  row: Cells;
  connected: boolean;
  invalidKey: string | null;
  set: (key: string, cell: string) => void;
}) {
  const position = row.position ?? "";
  const input = (key: string, label: string, placeholder: string) => (
    <label className="mini-field">
      <span>{label}</span>
      <input
        type="text"
        inputMode="decimal"
        value={row[key] ?? ""}
        placeholder={placeholder}
        aria-invalid={invalidKey === key}
        onChange={(e) => set(key, e.target.value)}
        data-testid={`overlay-${i}-${key}`}
      />
    </label>
  );
  return (
    <fieldset className="overlay-card" data-testid={`overlay-${i}`}>
      <legend>
        Overlay {i + 1}
        {!connected && <span className="muted small"> · not connected</span>}
      </legend>
      <div className="mini-grid">
        <label className="mini-field wide">
          <span>Position</span>
          <select
            value={position}
            aria-invalid={invalidKey === "position"}
            onChange={(e) => set("position", e.target.value)}
            data-testid={`overlay-${i}-position`}
          >
            <option value="">(default: {DEFAULT_CORNERS[i % 4]})</option>
            {POSITIONS.map((p) => (
              <option key={p} value={p}>
                {p}
              </option>
            ))}
          </select>
        </label>
        {position === "custom" && (
          <>
            {input("x", "X (px)", "0")}
            {input("y", "Y (px)", "0")}
          </>
        )}
        {input("size", "Size (× width)", "0.25")}
        {input("startSeconds", "Start (s)", "0")}
        {input("cornerRadius", "Corner radius", "0")}
        {input("borderWidth", "Border (px)", "0")}
      </div>
    </fieldset>
  );
}
