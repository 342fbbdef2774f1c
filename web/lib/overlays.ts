/**
 * compose-video's `overlays` config as the overlays editor holds it: one row of text cells per overlay, turned
 * back into the JSON of the overlays array the config form validates with the contracts' schema.
 */
export const POSITIONS = ["top-left", "top-right", "bottom-left", "bottom-right", "center", "custom"] as const;
/** packages/media's defaults by overlay index (bottom-right, then the other corners). */
export const DEFAULT_CORNERS = ["bottom-right", "top-right", "bottom-left", "top-left"];
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
