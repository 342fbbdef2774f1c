import type { EditorNode } from "./graph-state";

export interface TimelineSegment {
  id: string;
  title: string;
  /** From the segment node's output; undefined until it has one. */
  durationSeconds?: number;
  /** Where it starts in the merged video; undefined when an earlier segment's duration is not known. */
  startSeconds?: number;
  /** Its part of the whole (0..1); equal parts while durations are not all known. */
  share: number;
}

/** A merge's segments in play order, with durations and start times where their outputs tell them. */
export function mergeTimeline(node: EditorNode, nodes: ReadonlyMap<string, EditorNode>): { segments: TimelineSegment[]; totalSeconds: number; known: boolean } {
  const ids = node.inputs?.segments ?? [];
  const durations = ids.map((id) => {
    const d = nodes.get(id)?.output?.duration;
    return typeof d === "number" && d > 0 ? d : undefined;
  });
  const known = durations.length > 0 && durations.every((d) => d !== undefined);
  const totalSeconds = durations.reduce<number>((sum, d) => sum + (d ?? 0), 0);
  let start: number | undefined = 0;
  const segments = ids.map((id, i) => {
    const durationSeconds = durations[i];
    const segment: TimelineSegment = {
      id,
      title: nodes.get(id)?.title ?? id,
      durationSeconds,
      startSeconds: start,
      share: known && totalSeconds > 0 ? durationSeconds! / totalSeconds : 1 / ids.length,
    };
    start = start !== undefined && durationSeconds !== undefined ? start + durationSeconds : undefined;
    return segment;
  });
  return { segments, totalSeconds, known };
}
