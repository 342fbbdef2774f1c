/** Drawing edges and editing the graph, without a browser: why a connection is refused, the hint, the writes. */
import { describe, expect, it } from "vitest";
import { connectionHint, connectPatch, refusalReason } from "../../web/lib/connections";
import { graphLookup } from "../../web/lib/graph-state";
import { dependantPatches, isRunning, newNode } from "../../web/lib/node-edits";
import { editorNode, graph } from "./nodes";

const nodes = graph(
  editorNode({ id: "clip", title: "Clip" }),
  editorNode({ id: "script", title: "Script", asset: { type: "text", content: "Hello." } }),
  editorNode({ id: "merge", title: "Final cut", type: "merge-videos", inputs: { segments: ["clip"] } }),
);
const lookup = graphLookup(nodes);
const out = (nodeId: string) => ({ nodeId, id: "out", type: "source" as const });
const slot = (nodeId: string, id: string) => ({ nodeId, id, type: "target" as const });

describe("refusalReason", () => {
  it("explains a drop on a handle of the same kind", () => {
    expect(refusalReason(lookup, out("clip"), out("script"))).toBe("connect an output to an input (the handles on the left)");
    expect(refusalReason(lookup, slot("merge", "segments"), slot("clip", "x"))).toBe("connect an input to an output");
  });

  it("gives the gateway's reason for an input that does not accept the source, from either end", () => {
    const reason = 'input "segments" accepts video, but "Script" (script) produces text';
    expect(refusalReason(lookup, out("script"), slot("merge", "segments"))).toBe(reason);
    expect(refusalReason(lookup, slot("merge", "segments"), out("script"))).toBe(reason);
    expect(refusalReason(lookup, out("clip"), slot("merge", "segments"))).toBe('"clip" is already connected to segments');
  });
});

describe("connectionHint", () => {
  it("says where to drop while nothing is under the pointer", () => {
    expect(connectionHint({ fromHandle: out("clip"), toHandle: null, isValid: null }, lookup, nodes)).toEqual({
      kind: "idle",
      text: "Drop on an input handle (left side of a node)",
    });
    expect(connectionHint({ fromHandle: slot("merge", "segments"), toHandle: null, isValid: null }, lookup, nodes).text).toBe(
      "Drop on an output handle (right side of a node)",
    );
  });

  it("names the input a valid drop connects to, and the reason an invalid one is refused", () => {
    const nodesWithSecond = graph(...nodes.values(), editorNode({ id: "clip2" }));
    expect(
      connectionHint({ fromHandle: out("clip2"), toHandle: slot("merge", "segments"), isValid: true }, graphLookup(nodesWithSecond), nodesWithSecond),
    ).toEqual({
      kind: "valid",
      text: "Release to connect to Final cut · segments",
    });
    expect(connectionHint({ fromHandle: out("script"), toHandle: slot("merge", "segments"), isValid: false }, lookup, nodes)).toEqual({
      kind: "invalid",
      text: 'Cannot connect: input "segments" accepts video, but "Script" (script) produces text',
    });
  });
});

describe("the graph's writes", () => {
  it("appends a new input at the end of its slot (the play order)", () => {
    expect(connectPatch(nodes.get("merge")!, "clip2", "segments")).toEqual({ segments: ["clip", "clip2"] });
    expect(connectPatch(nodes.get("clip")!, "x", "video")).toEqual({ video: ["x"] });
  });

  it("takes a deleted node out of every node that uses it", () => {
    const g = graph(
      editorNode({ id: "a" }),
      editorNode({ id: "b" }),
      editorNode({ id: "m", type: "merge-videos", inputs: { segments: ["a", "b"] } }),
      editorNode({ id: "n", type: "merge-videos", inputs: { segments: ["b", "a", "b"] } }),
    );
    expect(dependantPatches(g, "b")).toEqual([
      { id: "m", inputs: { segments: ["a"] } },
      { id: "n", inputs: { segments: ["a"] } },
    ]);
    expect(dependantPatches(g, "m")).toEqual([]);
  });

  it("creates a palette node with a free id, a numbered title, and a video asset for an asset", () => {
    const g = graph(editorNode({ id: "asset-1", position: { x: 0, y: 0 } }));
    const asset = newNode("asset", g, [{ position: { x: 0, y: 0 }, height: 200 }]);
    expect(asset).toMatchObject({ id: "asset-2", title: "Asset 2", type: "asset", asset: { type: "video" } });
    expect(asset.position.x).toBe(0);
    expect(asset.position.y).toBeGreaterThan(200);
    const merge = newNode("merge-videos", g, []);
    expect(merge).toMatchObject({ id: "merge-videos-1", type: "merge-videos" });
    expect(merge.title).toMatch(/ 1$/);
    expect(merge).not.toHaveProperty("asset");
  });

  it("refuses to delete queued and running nodes only", () => {
    expect([isRunning(editorNode({ id: "q", status: "queued" })), isRunning(editorNode({ id: "r", status: "in_progress" }))]).toEqual([true, true]);
    expect(isRunning(editorNode({ id: "f", status: "failed" }))).toBe(false);
  });
});
