"use client";

import type { EditorNode } from "@/lib/graph-state";
import { formatDuration } from "@/lib/format";
import { mergeTimeline } from "@/lib/timeline";
import { useEditor } from "./context";

/**
 * A merge's sequence as a timeline: each segment in play order with its duration (from its node's output) as a bar
 * of proportional width and where it starts. Once the merge has its output, a click on a segment plays the output
 * from that segment's start.
 */
export function MergeTimeline({ node }: { node: EditorNode }) {
  const { nodes } = useEditor();
  const timeline = mergeTimeline(node, nodes);
  if (!timeline.segments.length) return null;
  const seek = (seconds: number) => {
    const video = document.querySelector<HTMLVideoElement>(`[data-testid="panel-output-video-${node.id}"]`);
    if (!video) return;
    video.currentTime = seconds;
    void video.play().catch(() => undefined);
  };
  const playable = node.status === "completed" && node.output?.type === "video";
  return (
    <section className="panel-section" data-testid="merge-timeline">
      <h3>Timeline</h3>
      <p className="muted small" data-testid="timeline-total">
        {timeline.known
          ? `${formatDuration(timeline.totalSeconds)} in ${timeline.segments.length} segments`
          : "Durations show once every segment has its output"}
      </p>
      <ol className="timeline">
        {timeline.segments.map((s, i) => (
          <li key={`${s.id}-${i}`} data-testid="timeline-segment" data-id={s.id} data-start={s.startSeconds ?? ""} data-duration={s.durationSeconds ?? ""}>
            <button
              type="button"
              className="timeline-bar"
              style={{ width: `${Math.max(8, s.share * 100)}%` }}
              disabled={!playable || s.startSeconds === undefined}
              title={playable ? `Play the output from ${s.title}` : s.title}
              onClick={() => s.startSeconds !== undefined && seek(s.startSeconds)}
            >
              <span className="order">{i + 1}</span>
            </button>
            <span className="timeline-label">
              {s.title} · {s.durationSeconds === undefined ? "?" : formatDuration(s.durationSeconds)}
              {s.startSeconds !== undefined && <span className="muted"> from {formatDuration(s.startSeconds)}</span>}
            </span>
          </li>
        ))}
      </ol>
    </section>
  );
}
