"use client";

import { useEffect, useRef, useState } from "react";

/**
 * compose-video's `overlays` config as one card per overlay (position preset or x/y, size, start, corners,
 * border) instead of raw JSON. It edits the same value the config form validates with the contracts'
 * schema: the JSON of the overlays array, so schema errors still show under the field.
 */
const POSITIONS = ["top-left", "top-right", "bottom-left", "bottom-right", "center", "custom"] as const;
/** packages/media's defaults by overlay index (bottom-right, then the other corners). */
const DEFAULT_CORNERS = ["bottom-right", "top-right", "bottom-left", "top-left"];
const NUMBER_KEYS = ["x", "y", "size", "startSeconds", "cornerRadius", "borderWidth", "margin"] as const;

type Cells = Record<string, string>;

function parseCells(value: string): Cells[] | null {
  if (!value.trim()) return [];
  try {
    const parsed = JSON.parse(value);
    if (!Array.isArray(parsed)) return null;
    return parsed.map((o) =>
      Object.fromEntries(Object.entries((o ?? {}) as Record<string, unknown>).map(([k, v]) => [k, v === undefined || v === null ? "" : String(v)])),
    );
  } catch {
    return null;
  }
}

function toValue(rows: Cells[]): string {
  const objects = rows.map((row) => {
    const out: Record<string, unknown> = {};
    for (const [key, raw] of Object.entries(row)) {
      const text = raw.trim();
      if (text === "") continue;
      if ((NUMBER_KEYS as readonly string[]).includes(key)) {
        const n = Number(text);
        out[key] = Number.isFinite(n) ? n : text; // the schema reports the non-number under the field
      } else out[key] = text;
    }
    return out;
  });
  while (objects.length && Object.keys(objects[objects.length - 1]!).length === 0) objects.pop();
  return objects.length ? JSON.stringify(objects) : "";
}

export function OverlaysEditor({
  value,
  onChange,
  overlayCount,
  error,
}: {
  value: string;
  onChange: (value: string) => void;
  overlayCount: number;
  error?: string;
}) {
  // The schema's error path ("0.size: …") marks the one input it is about.
  const bad = error ? /^(\d+)\.(\w+):/.exec(error) : null;
  const invalid = (index: number, key: string) => !!bad && Number(bad[1]) === index && bad[2] === key;
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
  const set = (index: number, key: string, cell: string) => {
    const next = Array.from({ length: Math.max(rows.length, index + 1) }, (_, i) => ({ ...(rows[i] ?? {}) }));
    next[index]![key] = cell;
    setRows(next);
    const v = toValue(next);
    emitted.current = v;
    onChange(v);
  };

  return (
    <div className="overlays" data-testid="overlays-editor">
      {Array.from({ length: count }, (_, i) => {
        const row = rows[i] ?? {};
        const position = row.position ?? "";
        const input = (key: string, label: string, placeholder: string) => (
          <label className="mini-field">
            <span>{label}</span>
            <input
              type="text"
              inputMode="decimal"
              value={row[key] ?? ""}
              placeholder={placeholder}
              aria-invalid={invalid(i, key)}
              onChange={(e) => set(i, key, e.target.value)}
              data-testid={`overlay-${i}-${key}`}
            />
          </label>
        );
        return (
          <fieldset className="overlay-card" key={i} data-testid={`overlay-${i}`}>
            <legend>
              Overlay {i + 1}
              {i >= overlayCount && <span className="muted small"> · not connected</span>}
            </legend>
            <div className="mini-grid">
              <label className="mini-field wide">
                <span>Position</span>
                <select
                  value={position}
                  aria-invalid={invalid(i, "position")}
                  onChange={(e) => set(i, "position", e.target.value)}
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
      })}
    </div>
  );
}
