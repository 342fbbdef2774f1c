import { Title } from "@vp/contracts";
import { ApiError, errorMessage, type ListedPipeline } from "./api";

/** The pipelines list page's rules: titles checked before they are sent, each row's progress, import failures. */

/** A title checked with the same schema the gateway applies: the title to send, or the reason to show. */
export function checkTitle(text: string): { ok: true; title: string } | { ok: false; error: string } {
  const parsed = Title.safeParse(text);
  if (parsed.success) return { ok: true, title: parsed.data };
  return { ok: false, error: `Title ${parsed.error.issues[0]?.message ?? "is invalid"}` };
}

export interface PipelineProgress {
  total: number;
  done: number;
  failed: number;
  /** Queued or in progress. */
  running: number;
  /** The state-writer's metadata.totalCost (0 until a node has cost something). */
  cost: number;
}

/** A row's node counts and total cost. */
export function pipelineProgress(p: ListedPipeline): PipelineProgress {
  const counts = p.node_counts;
  return {
    total: counts?.total ?? 0,
    done: counts?.completed ?? 0,
    failed: counts?.failed ?? 0,
    running: counts ? counts.in_progress + counts.queued : 0,
    cost: typeof p.metadata?.totalCost === "number" ? p.metadata.totalCost : 0,
  };
}

export interface ImportFailure {
  message: string;
  /** One line per problem the gateway found in the document. */
  problems: string[];
}

/** A file chosen for import: the JSON document it holds, or why it holds none. */
export async function readImport(file: File): Promise<{ ok: true; document: unknown } | { ok: false; failure: ImportFailure }> {
  try {
    return { ok: true, document: JSON.parse(await file.text()) };
  } catch (error) {
    return { ok: false, failure: { message: `${file.name} is not valid JSON`, problems: [errorMessage(error)] } };
  }
}

/** The gateway refused an imported document: its reason and each problem it listed. */
export function importFailure(fileName: string, error: unknown): ImportFailure {
  const problems = error instanceof ApiError ? (error.problems ?? []).map((p) => p.text ?? p.message) : [];
  return { message: `${fileName} was not imported: ${errorMessage(error)}`, problems };
}

/** The list's order, the gateway's own (last updated first, then id), kept after this page's renames. */
export function sortPipelines<T extends Pick<ListedPipeline, "id" | "updated_at">>(list: readonly T[]): T[] {
  const time = (p: T) => Date.parse(p.updated_at) || 0;
  return [...list].sort((a, b) => time(b) - time(a) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** The pipelines whose title holds every word of the search (case- and accent-insensitive); all of them for an empty one. */
export function filterPipelines<T extends Pick<ListedPipeline, "title">>(list: readonly T[], search: string): T[] {
  const fold = (s: string) => s.normalize("NFD").replace(/\p{M}/gu, "").toLowerCase();
  const words = fold(search).split(/\s+/).filter(Boolean);
  if (!words.length) return [...list];
  return list.filter((p) => {
    const title = fold(p.title);
    return words.every((w) => title.includes(w));
  });
}
