/**
 * compose-video's `overlays` config as the overlays editor holds it: one row of text cells per overlay, turned
 * back into the JSON of the overlays array the config form validates with the contracts' schema.
 */
import { DEFAULT_CORNERS, overlayLayout, type OverlayLayout, type OverlayPosition, type OverlaySpec } from "@vp/media/layout";

export { DEFAULT_CORNERS };
export const POSITIONS = ["top-left", "top-right", "bottom-left", "bottom-right", "center", "custom"] as const;
const NUMBER_KEYS = ["x", "y", "size", "startSeconds", "cornerRadius", "borderWidth", "margin"] as const;

/** One overlay's fields as typed. */
export type Cells = Record<string, string>;

/** The rows of an overlays value; null when it is not an array (hand-written JSON, edited as text). */
export function parseCells(value: string): Cells[] | null {
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

/** The overlays value of the rows: empty cells left out, numbers as numbers, trailing empty overlays dropped. */
export function toValue(rows: Cells[]): string {
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

/** The rows with one cell changed; rows up to `index` exist afterwards. */
export function withCell(rows: Cells[], index: number, key: string, cell: string): Cells[] {
  const next = Array.from({ length: Math.max(rows.length, index + 1) }, (_, i) => ({ ...(rows[i] ?? {}) }));
  next[index]![key] = cell;
  return next;
}

/** The cell a schema error is about, from its path ("0.size: …"); null when it names none. */
export function errorCell(error: string | undefined): { index: number; key: string } | null {
  const bad = error ? /^(\d+)\.(\w+):/.exec(error) : null;
  return bad ? { index: Number(bad[1]), key: bad[2]! } : null;
}

/** A frame or a picture, in pixels. */
export interface Size {
  width: number;
  height: number;
}

/** compose-video's output is the background's size; until that is known, a 16:9 frame of 1280x720. */
export const FALLBACK_FRAME: Size = { width: 1280, height: 720 };
/** An overlay whose picture size is not known yet is drawn 16:9. */
export const FALLBACK_OVERLAY: Size = { width: 16, height: 9 };
const MIN_SIZE = 0.05;

/** The picture size a node's output has (or its config asks for: width and height); undefined when neither says. */
export function pictureSize(
  node: { output?: { width?: number; height?: number } | null; config?: Record<string, unknown> | null } | undefined,
): Size | undefined {
  const { width, height } = node?.output ?? {};
  if (width && height) return { width, height };
  const config = node?.config ?? {};
  if (typeof config.width === "number" && typeof config.height === "number" && config.width > 0 && config.height > 0) {
    return { width: config.width, height: config.height };
  }
  return undefined;
}

/** One overlay's cells as packages/media reads them; a cell that is not (yet) a valid value is left to its default. */
export function specOf(row: Cells): OverlaySpec {
  const spec: OverlaySpec = {};
  const position = row.position?.trim();
  if (position && (POSITIONS as readonly string[]).includes(position)) spec.position = position as OverlayPosition;
  for (const key of ["x", "y", "size", "cornerRadius", "borderWidth", "margin"] as const) {
    const text = row[key]?.trim();
    const n = text ? Number(text) : Number.NaN;
    if (Number.isFinite(n) && n >= 0) spec[key] = n;
  }
  if (spec.size !== undefined && !(spec.size >= MIN_SIZE && spec.size <= 1)) delete spec.size;
  return spec;
}

/** Where compose-video puts overlay `index` in the frame: packages/media's own layout of the cells. */
export function placementOf(frame: Size, overlay: Size, row: Cells, index: number): OverlayLayout {
  return overlayLayout(frame, overlay, specOf(row), index);
}

const clamp = (n: number, lo: number, hi: number) => Math.min(Math.max(n, lo), Math.max(lo, hi));

/** The cells of a box moved so its top-left corner is at (x, y): a custom position, inside the frame. */
export function movedCells(frame: Size, box: OverlayLayout, x: number, y: number): Cells {
  return {
    position: "custom",
    x: String(Math.round(clamp(x, 0, frame.width - box.width))),
    y: String(Math.round(clamp(y, 0, frame.height - box.height))),
  };
}

/**
 * The corner a box grows from (the one its position keeps still) and the corner its resize handle sits on: a
 * preset corner stays put, a custom box keeps its top-left, a centred one grows both ways.
 */
export function resizeCorner(position: OverlayPosition): "top-left" | "top-right" | "bottom-left" | "bottom-right" {
  switch (position) {
    case "top-right":
      return "bottom-left";
    case "bottom-left":
      return "top-right";
    case "bottom-right":
      return "top-left";
    case "top-left":
    case "center":
    case "custom":
      return "bottom-right";
  }
}

/** The position the layout used for overlay `index` (its own, else the default corner). */
export function positionOf(row: Cells, index: number): OverlayPosition {
  return specOf(row).position ?? DEFAULT_CORNERS[index % DEFAULT_CORNERS.length]!;
}

/**
 * The size cell for a resize handle dragged to (px, py) in frame pixels: the box's width (and the width its height
 * implies, whichever is larger) measured from the edge that stays still, as a fraction of the frame's width.
 */
export function resizedSize(frame: Size, box: OverlayLayout, position: OverlayPosition, px: number, py: number): string {
  const aspect = box.innerHeight / box.innerWidth;
  const right = box.x + box.width;
  const bottom = box.y + box.height;
  const centre = { x: box.x + box.width / 2, y: box.y + box.height / 2 };
  const corner = resizeCorner(position);
  const outerWidth = position === "center" ? 2 * Math.abs(px - centre.x) : corner.endsWith("right") ? px - box.x : right - px;
  const outerHeight = position === "center" ? 2 * Math.abs(py - centre.y) : corner.startsWith("bottom") ? py - box.y : bottom - py;
  const inner = Math.max(outerWidth - 2 * box.border, (outerHeight - 2 * box.border) / aspect);
  return sizeCell(inner / frame.width);
}

/** A size as the form writes it: three decimals, within the schema's 0.05–1. */
export function sizeCell(size: number): string {
  return String(Math.round(clamp(size, MIN_SIZE, 1) * 1000) / 1000);
}
