import type { Variable } from "@vp/contracts";

/** A CSV as a table: the header row's names and each following row's cells. */
export interface CsvTable {
  header: string[];
  rows: string[][];
}

/**
 * Parses CSV text (RFC 4180: commas, double-quoted cells with "" for a quote, line breaks inside quotes, CRLF or
 * LF; a byte order mark and blank lines are ignored). The first row is the header. Throws with the line of an
 * unclosed quote.
 */
export function parseCsv(text: string): CsvTable {
  const source = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const records: string[][] = [];
  let record: string[] = [];
  let cell = "";
  let quoted = false;
  let quoteLine = 0;
  let line = 1;
  let i = 0;
  const endRecord = () => {
    record.push(cell);
    if (!(record.length === 1 && record[0] === "")) records.push(record);
    record = [];
    cell = "";
  };
  while (i < source.length) {
    const ch = source[i]!;
    if (quoted) {
      if (ch === '"') {
        if (source[i + 1] === '"') {
          cell += '"';
          i += 2;
          continue;
        }
        quoted = false;
      } else {
        if (ch === "\n") line++;
        cell += ch;
      }
      i++;
      continue;
    }
    if (ch === '"' && cell === "") {
      quoted = true;
      quoteLine = line;
    } else if (ch === ",") {
      record.push(cell);
      cell = "";
    } else if (ch === "\n" || ch === "\r") {
      if (ch === "\r" && source[i + 1] === "\n") i++;
      line++;
      endRecord();
    } else cell += ch;
    i++;
  }
  if (quoted) throw new Error(`A quoted cell opened on line ${quoteLine} is never closed`);
  if (cell !== "" || record.length > 0) endRecord();
  const [header = [], ...rows] = records;
  return { header: header.map((h) => h.trim()), rows };
}

/**
 * The table's rows as a batch takes them, one object per row keyed by column: a number variable's cell that reads
 * as a number becomes one (the gateway checks every value against its variable and says which row and column is
 * wrong); an empty cell is left out, so the variable's default applies.
 */
export function batchRowsOf(table: CsvTable, variables: readonly Variable[]): Array<Record<string, string | number>> {
  const numeric = new Set(variables.filter((v) => v.type === "number").map((v) => v.name));
  return table.rows.map((cells) => {
    const row: Record<string, string | number> = {};
    table.header.forEach((column, i) => {
      const raw = cells[i] ?? "";
      if (raw === "" || column === "") return;
      const trimmed = raw.trim();
      row[column] = numeric.has(column) && trimmed !== "" && Number.isFinite(Number(trimmed)) ? Number(trimmed) : raw;
    });
    return row;
  });
}
