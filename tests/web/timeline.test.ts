/** A merge's timeline without a browser: play order, durations, start times, shares. */
import { describe, expect, it } from "vitest";
import { mergeTimeline } from "../../web/lib/timeline";
import { editorNode, graph } from "./nodes";

const clip = (id: string, duration?: number) =>
  editorNode({
    id,
    title: id.toUpperCase(),
    status: duration ? "completed" : "pending",
    output: duration ? { type: "video", s3Key: `k/${id}`, duration } : null,
  });
const merge = editorNode({ id: "m", type: "merge-videos", inputs: { segments: ["b", "a", "b"] } });

describe("mergeTimeline", () => {
  it("lists the segments in play order (a clip used twice twice), each with its duration, start and share", () => {
    const t = mergeTimeline(merge, graph(clip("a", 1), clip("b", 2), merge));
    expect(t.known).toBe(true);
    expect(t.totalSeconds).toBe(5);
    expect(t.segments.map((s) => [s.id, s.title, s.durationSeconds, s.startSeconds, s.share])).toEqual([
      ["b", "B", 2, 0, 0.4],
      ["a", "A", 1, 2, 0.2],
      ["b", "B", 2, 3, 0.4],
    ]);
  });

  it("until every segment has its output: equal shares, and no start after an unknown duration", () => {
    const t = mergeTimeline(merge, graph(clip("a"), clip("b", 2), merge));
    expect(t.known).toBe(false);
    expect(t.segments.map((s) => [s.durationSeconds, s.startSeconds, s.share])).toEqual([
      [2, 0, 1 / 3],
      [undefined, 2, 1 / 3],
      [2, undefined, 1 / 3],
    ]);
  });
});
