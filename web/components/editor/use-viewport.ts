"use client";

import { useCallback, useEffect, useRef } from "react";
import { useReactFlow } from "@xyflow/react";

export const FIT = { padding: 0.15, maxZoom: 1, minZoom: 0.3 } as const;

/** Fitting the graph to the canvas: now (animated, the header's button) or once the next render is measured. */
export function useFitView() {
  const rf = useReactFlow();
  const fitSoon = useCallback(() => {
    // After React has rendered and React Flow has measured the nodes.
    requestAnimationFrame(() => requestAnimationFrame(() => void rf.fitView(FIT)));
  }, [rf]);
  const fitNow = useCallback(() => void rf.fitView({ ...FIT, duration: 200 }), [rf]);
  return { fitSoon, fitNow };
}

/** Fits the graph again whenever `value` changes after the first render (a column opening narrows the canvas). */
export function useRefitOn(value: unknown, fitSoon: () => void) {
  const firstRender = useRef(true);
  // biome-ignore lint/correctness/useExhaustiveDependencies: `value` is the trigger, not read in the effect.
  useEffect(() => {
    if (firstRender.current) {
      firstRender.current = false;
      return;
    }
    fitSoon();
  }, [value, fitSoon]);
}

/** Opening the panel narrows the canvas: bring the selected node into view if it ended up behind the edge. */
export function useRevealSelected(selectedId: string | undefined) {
  const rf = useReactFlow();
  useEffect(() => {
    if (!selectedId) return;
    const frame = requestAnimationFrame(() => {
      const element = document.querySelector(`.react-flow__node[data-id="${CSS.escape(selectedId)}"]`);
      const canvas = document.querySelector(".canvas");
      const internal = rf.getInternalNode(selectedId);
      if (!element || !canvas || !internal) return;
      const box = element.getBoundingClientRect();
      const view = canvas.getBoundingClientRect();
      if (box.left >= view.left && box.right <= view.right && box.top >= view.top && box.bottom <= view.bottom) return;
      const width = internal.measured.width ?? 264;
      const height = internal.measured.height ?? 250;
      const { x, y } = internal.internals.positionAbsolute;
      void rf.setCenter(x + width / 2, y + height / 2, { zoom: rf.getZoom(), duration: 150 });
    });
    return () => cancelAnimationFrame(frame);
  }, [selectedId, rf]);
}
