/** The canvas's view of the model, without a browser: React Flow nodes kept in step, selection, derived edges. */
import { describe, expect, it } from "vitest";
import type { Node } from "@xyflow/react";
import { deselectAll, flowEdges, selectOnly, storedPosition, syncFlowNodes, withEdgeSelection } from "../../web/lib/canvas";
import { editorNode, graph } from "./nodes";

const flowNode = (id: string, selected = false): Node => ({ id, type: "vp", position: { x: 0, y: 0 }, data: {}, selected });

describe("syncFlowNodes", () => {
  it("keeps the same array while the ids are the same, so React Flow keeps positions and selection", () => {
    const previous = [flowNode("a", true), flowNode("b")];
    expect(syncFlowNodes(previous, graph(editorNode({ id: "a" }), editorNode({ id: "b" })))).toBe(previous);
  });

  it("adds new nodes at their stored position (or a layered one) and drops removed ones", () => {
    const previous = [flowNode("a", true), flowNode("gone")];
    const next = syncFlowNodes(previous, graph(editorNode({ id: "a" }), editorNode({ id: "b", position: { x: 40, y: 80 } }), editorNode({ id: "c" })));
    expect(next.map((n) => n.id)).toEqual(["a", "b", "c"]);
    expect(next[0]).toBe(previous[0]);
    expect(next[1]).toMatchObject({ type: "vp", position: { x: 40, y: 80 } });
    expect(next[2]!.position).toEqual({ x: expect.any(Number), y: expect.any(Number) });
  });
});

describe("selection", () => {
  it("selects one node, leaving the others' objects alone when they need no change", () => {
    const nodes = [flowNode("a", true), flowNode("b"), flowNode("c")];
    const next = selectOnly(nodes, "b");
    expect(next.map((n) => n.selected)).toEqual([false, true, false]);
    expect(next[2]).toBe(nodes[2]);
    expect(selectOnly(nodes, null).some((n) => n.selected)).toBe(false);
  });

  it("deselects everything, and returns the same array when nothing was selected", () => {
    const none = [flowNode("a"), flowNode("b")];
    expect(deselectAll(none)).toBe(none);
    expect(deselectAll([flowNode("a", true), flowNode("b")]).some((n) => n.selected)).toBe(false);
  });

  it("follows React Flow's edge select changes and ignores the others", () => {
    const next = withEdgeSelection(new Set(["x"]), [
      { type: "select", id: "y", selected: true },
      { type: "select", id: "x", selected: false },
      { type: "remove", id: "z" },
    ]);
    expect([...next]).toEqual(["y"]);
  });
});

describe("flowEdges", () => {
  it("draws one edge per input, numbered when a slot takes several, ready once the source completed", () => {
    const nodes = graph(
      editorNode({ id: "a", status: "completed" }),
      editorNode({ id: "b" }),
      editorNode({ id: "m", type: "merge-videos", inputs: { segments: ["a", "b"] } }),
    );
    const edges = flowEdges(nodes, new Set(["b->m.segments"]));
    expect(edges.map((e) => [e.id, e.label, e.className, e.selected])).toEqual([
      ["a->m.segments", "1", "edge-ready", false],
      ["b->m.segments", "2", "edge-waiting", true],
    ]);
    expect(edges[0]).toMatchObject({ source: "a", target: "m", sourceHandle: "out", targetHandle: "segments", ariaLabel: "a to m segments #1" });
  });

  it("leaves a single input unnumbered", () => {
    const nodes = graph(editorNode({ id: "a" }), editorNode({ id: "c", type: "captions", inputs: { video: ["a"] } }));
    expect(flowEdges(nodes, new Set())[0]!.label).toBeUndefined();
  });
});

it("stores a dragged position in whole pixels", () => {
  expect(storedPosition({ x: 10.4, y: -3.6 })).toEqual({ x: 10, y: -4 });
});
