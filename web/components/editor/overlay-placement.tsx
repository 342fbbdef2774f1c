"use client";

import { useRef, useState, type KeyboardEvent, type PointerEvent } from "react";
import type { OverlayLayout } from "@vp/media/layout";
import {
  FALLBACK_FRAME,
  FALLBACK_OVERLAY,
  movedCells,
  pictureSize,
  placementOf,
  positionOf,
  resizeCorner,
  resizedSize,
  sizeCell,
  specOf,
  type Cells,
  type Size,
} from "@/lib/overlays";
import { useEditor } from "./context";

/** A drag in progress: the overlay, what it does, where the pointer and the box started, and the cells so far. */
interface Drag {
  index: number;
  kind: "move" | "resize";
  pointerId: number;
  start: { x: number; y: number };
  box: OverlayLayout;
  cells: Cells | null;
}

/**
 * compose-video's overlays drawn over a frame of the background (its output video paused at a frame, or a neutral
 * box of the background's size): drag a box to move it, its corner to resize it, or use the arrow keys. Every
 * change goes through `setCells`, the overlay cards' own write path, so the form, validation and undo see it.
 */
export function OverlayPlacement({
  rows,
  count,
  inputs,
  setCells,
}: {
  rows: Cells[];
  count: number;
  inputs: Record<string, string[]> | undefined;
  setCells: (index: number, cells: Cells) => void;
}) {
  const { nodes, api, pipelineId } = useEditor();
  const background = nodes.get(inputs?.background?.[0] ?? "");
  const [measured, setMeasured] = useState<Size | null>(null);
  const frame = pictureSize(background) ?? measured ?? FALLBACK_FRAME;
  const stage = useRef<HTMLDivElement>(null);
  const [drag, setDrag] = useState<Drag | null>(null);
  const video =
    background?.status === "completed" && background.output?.type === "video"
      ? api.outputUrl(pipelineId, background.id, String(background.metadata?.jobId ?? background.output.s3Key))
      : null;

  const rowOf = (i: number) => (drag?.index === i && drag.cells ? { ...(rows[i] ?? {}), ...drag.cells } : (rows[i] ?? {}));
  const boxOf = (i: number) => placementOf(frame, pictureSize(nodes.get(inputs?.overlays?.[i] ?? "")) ?? FALLBACK_OVERLAY, rowOf(i), i);
  /** Frame pixels per CSS pixel of the drawn frame. */
  const scale = () => frame.width / (stage.current?.getBoundingClientRect().width || frame.width);

  const begin = (event: PointerEvent, index: number, kind: Drag["kind"]) => {
    if (event.button !== 0) return;
    event.preventDefault();
    event.stopPropagation();
    (event.currentTarget as HTMLElement).setPointerCapture(event.pointerId);
    setDrag({ index, kind, pointerId: event.pointerId, start: { x: event.clientX, y: event.clientY }, box: boxOf(index), cells: null });
  };
  const move = (event: PointerEvent) => {
    if (!drag || event.pointerId !== drag.pointerId) return;
    const k = scale();
    const dx = (event.clientX - drag.start.x) * k;
    const dy = (event.clientY - drag.start.y) * k;
    const { box, index } = drag;
    const position = positionOf(rows[index] ?? {}, index);
    const corner = cornerOf(box, position);
    const cells =
      drag.kind === "move" ? movedCells(frame, box, box.x + dx, box.y + dy) : { size: resizedSize(frame, box, position, corner.x + dx, corner.y + dy) };
    setDrag({ ...drag, cells });
  };
  const end = (event: PointerEvent) => {
    if (!drag || event.pointerId !== drag.pointerId) return;
    if (drag.cells) setCells(drag.index, drag.cells);
    setDrag(null);
  };

  /** Arrows move the box (a hundredth of the frame's width, Shift ten times that). */
  const nudge = (event: KeyboardEvent, index: number) => {
    const arrow = ARROWS[event.key];
    if (!arrow) return;
    event.preventDefault();
    const step = Math.max(1, Math.round(frame.width / 100)) * (event.shiftKey ? 10 : 1);
    const box = boxOf(index);
    setCells(index, movedCells(frame, box, box.x + arrow[0] * step, box.y + arrow[1] * step));
  };
  /** On the corner: right and up grow the overlay by 1 % of the frame's width, left and down shrink it. */
  const resizeKey = (event: KeyboardEvent, index: number) => {
    const arrow = ARROWS[event.key];
    if (!arrow) return;
    event.preventDefault();
    event.stopPropagation();
    const size = specOf(rows[index] ?? {}).size ?? boxOf(index).innerWidth / frame.width;
    const grow = arrow[0] > 0 || arrow[1] < 0 ? 1 : -1;
    setCells(index, { size: sizeCell(size + grow * (event.shiftKey ? 0.1 : 0.01)) });
  };

  const pct = (n: number, of: number) => `${(n / of) * 100}%`;
  return (
    <div className="placement">
      <div
        ref={stage}
        className={`placement-frame${video ? "" : " empty"}`}
        style={{ aspectRatio: `${frame.width} / ${frame.height}` }}
        data-testid="placement-frame"
        data-width={frame.width}
        data-height={frame.height}
      >
        {video ? (
          <video
            key={video}
            src={video}
            muted
            playsInline
            preload="auto"
            aria-label={`A frame of ${background?.title ?? "the background"}`}
            onLoadedMetadata={(e) => {
              const v = e.currentTarget;
              if (v.videoWidth && v.videoHeight) setMeasured({ width: v.videoWidth, height: v.videoHeight });
              // A frame a second in (or mid-way through a shorter clip): the first is often black.
              v.currentTime = Math.min(1, (v.duration || 0) / 2);
            }}
            data-testid="placement-video"
          />
        ) : (
          <span className="placement-note">
            {frame.width} × {frame.height}
            <br />
            {background ? "the background has no output yet" : "connect a background"}
          </span>
        )}
        {Array.from({ length: count }, (_, i) => {
          const box = boxOf(i);
          const position = positionOf(rowOf(i), i);
          const corner = resizeCorner(position);
          const active = drag?.index === i;
          return (
            // biome-ignore lint/a11y/useSemanticElements: a box drawn over a picture, dragged; a <button> cannot hold the corner handle.
            <div
              key={i}
              role="button"
              aria-roledescription="draggable overlay"
              tabIndex={0}
              className={`placement-box${active ? " dragging" : ""}`}
              style={{
                left: pct(box.x, frame.width),
                top: pct(box.y, frame.height),
                width: pct(box.width, frame.width),
                height: pct(box.height, frame.height),
              }}
              aria-label={`Overlay ${i + 1} at ${box.x}, ${box.y}, ${box.width} × ${box.height} pixels. Drag or use the arrow keys to move it.`}
              onPointerDown={(e) => begin(e, i, "move")}
              onPointerMove={move}
              onPointerUp={end}
              onPointerCancel={() => setDrag(null)}
              onKeyDown={(e) => nudge(e, i)}
              data-testid={`placement-box-${i}`}
              data-x={box.x}
              data-y={box.y}
              data-width={box.width}
              data-height={box.height}
            >
              <span className="placement-label">
                {i + 1}
                {active && drag.cells ? ` · ${box.x}, ${box.y} · ${box.width}×${box.height}` : ""}
              </span>
              <div
                role="slider"
                tabIndex={0}
                className={`placement-handle ${corner}`}
                aria-label={`Overlay ${i + 1} size, percent of the frame's width`}
                aria-valuemin={5}
                aria-valuemax={100}
                aria-valuenow={Math.round((box.innerWidth / frame.width) * 100)}
                // Moves and the release bubble to the box, which ends either kind of drag.
                onPointerDown={(e) => begin(e, i, "resize")}
                onKeyDown={(e) => resizeKey(e, i)}
                data-testid={`placement-resize-${i}`}
              />
            </div>
          );
        })}
      </div>
      <p className="field-help">Drag an overlay to move it, its corner handle to resize it; arrow keys on a box or its handle do the same.</p>
    </div>
  );
}

const ARROWS: Record<string, [number, number]> = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };

/** Where the resize handle of a box is, in frame pixels. */
function cornerOf(box: OverlayLayout, position: ReturnType<typeof positionOf>): { x: number; y: number } {
  const corner = resizeCorner(position);
  return { x: corner.endsWith("right") ? box.x + box.width : box.x, y: corner.startsWith("bottom") ? box.y + box.height : box.y };
}
