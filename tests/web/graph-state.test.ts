/** The editor's model, without a browser: the stale-status guard, snapshots, edges, ids and layout. */
import { describe, expect, it } from "vitest";
import { emptyGraph, edgesOf, graphReducer, inputsWithout, nextNodeId, statusCounts, totalCost, type GraphState } from "../../web/lib/graph-state";
import { COLUMN_GAP, layoutMissing, placeNewNode, NODE_WIDTH, ROW_GAP } from "../../web/lib/layout";
import { inputSlots } from "../../web/lib/node-types";
import type { ApiNode } from "../../web/lib/api";
import { apiNode } from "./nodes";

const pipeline = { id: "p", version: "1.0", title: "P", created_at: "", updated_at: "", config: {}, metadata: {} };
const event = (nodeId: string, status: ApiNode["status"], stateVersion: number, extra: Record<string, unknown> = {}) => ({
  kind: "event" as const,
  event: { nodeId, status, stateVersion, metadata: { ...extra }, output: null, pipelineMetadata: { progress: { completed: 0 } } },
});

function loaded(...nodes: ApiNode[]): GraphState {
  return graphReducer(emptyGraph, { kind: "loaded", pipeline, nodes });
}

describe("graphReducer", () => {
  it("applies structure changes in revision order, drops ones it has, and reloads after a gap", () => {
    const at = (revision: number, ...nodes: ApiNode[]) => graphReducer(emptyGraph, { kind: "loaded", pipeline: { ...pipeline, revision }, nodes });
    let s = at(2, apiNode({ id: "a", title: "A", revision: 1 }), apiNode({ id: "b", title: "B", revision: 2 }));
    expect(s.revision).toBe(2);
    const change = (revision: number, nodes: Array<{ id: string; node: ApiNode | null }>, extra = {}) => ({
      kind: "structure" as const,
      own: false,
      event: { revision, by: "ben", at: "", nodes, ...extra },
    });
    // The next revision: a rename, an addition and a removal, with a notice of who did what.
    s = graphReducer(s, change(3, [{ id: "a", node: apiNode({ id: "a", title: "Intro", revision: 3 }) }]));
    expect(s.nodes.get("a")?.title).toBe("Intro");
    expect(s.remoteChange).toEqual({ revision: 3, by: "ben", what: 'changed "Intro"' });
    s = graphReducer(s, change(4, [{ id: "c", node: apiNode({ id: "c", title: "C", revision: 4, status: "pending" }) }]));
    s = graphReducer(s, change(5, [{ id: "b", node: null }], { pipeline: { title: "Renamed", config: {} } }));
    expect([...s.nodes.keys()]).toEqual(["a", "c"]);
    expect(s.pipeline?.title).toBe("Renamed");
    expect(s.remoteChange?.what).toBe('renamed the pipeline, removed "B"');
    expect(s.revision).toBe(5);
    // A revision it has (a replay, or its own write already applied) changes nothing.
    expect(graphReducer(s, change(4, [{ id: "c", node: null }]))).toBe(s);
    // Its own change: applied, no notice.
    const own = graphReducer(s, { ...change(6, [{ id: "c", node: apiNode({ id: "c", title: "Mine", revision: 6 }) }]), own: true });
    expect(own.nodes.get("c")?.title).toBe("Mine");
    expect(own.remoteChange?.revision).toBe(5);
    // A save answered after a newer change from elsewhere arrived is not put back.
    expect(graphReducer(own, { kind: "saved", node: apiNode({ id: "c", title: "Older", revision: 4 }) }).nodes.get("c")?.title).toBe("Mine");
    // Missing revision 7: the structure is reloaded; so is a resumed stream that is ahead.
    const gap = graphReducer(own, change(8, [{ id: "a", node: null }]));
    expect(gap.stale).toBe(true);
    expect(gap.nodes.has("a")).toBe(true);
    expect(graphReducer(own, { kind: "revision", revision: 6 }).stale).toBe(false);
    expect(graphReducer(own, { kind: "revision", revision: 7 }).stale).toBe(true);
  });

  it("applies node events in version order and drops older or repeated ones (no stale status)", () => {
    let s = graphReducer(loaded(apiNode({ id: "m" })), { kind: "snapshot", pipeline, nodes: [apiNode({ id: "m" })], stateVersions: { m: 3 } });
    s = graphReducer(s, event("m", "queued", 4));
    s = graphReducer(s, event("m", "in_progress", 5, { progress: 10 }));
    s = graphReducer(s, event("m", "completed", 7));
    expect(s.nodes.get("m")).toMatchObject({ status: "completed", stateVersion: 7 });
    // A replayed progress tick and a duplicate completion change nothing.
    const after = graphReducer(s, event("m", "in_progress", 6, { progress: 90 }));
    expect(after).toBe(s);
    expect(graphReducer(s, event("m", "completed", 7))).toBe(s);
    expect(s.pipeline?.metadata).toEqual({ progress: { completed: 0 } });
  });

  it("drops events the snapshot already covers", () => {
    let s = graphReducer(emptyGraph, { kind: "snapshot", pipeline, nodes: [apiNode({ id: "m", status: "completed" })], stateVersions: { m: 9 } });
    s = graphReducer(s, event("m", "in_progress", 8));
    expect(s.nodes.get("m")!.status).toBe("completed");
  });

  it("keeps newer streamed state over an older snapshot and over REST reads, but takes their structure", () => {
    let s = loaded(apiNode({ id: "m", title: "Old" }));
    s = graphReducer(s, event("m", "in_progress", 5));
    s = graphReducer(s, { kind: "snapshot", pipeline, nodes: [apiNode({ id: "m", title: "New", status: "pending" })], stateVersions: { m: 2 } });
    expect(s.nodes.get("m")).toMatchObject({ title: "New", status: "in_progress", stateVersion: 5 });
    s = graphReducer(s, { kind: "loaded", pipeline, nodes: [apiNode({ id: "m", title: "Newer", status: "pending" })] });
    expect(s.nodes.get("m")).toMatchObject({ title: "Newer", status: "in_progress", stateVersion: 5 });
  });

  it("takes only structure from write answers", () => {
    let s = loaded(apiNode({ id: "m", status: "in_progress" }));
    s = graphReducer(s, { kind: "saved", node: apiNode({ id: "m", title: "Renamed", config: { fps: 24 }, status: "pending", position: { x: 1, y: 2 } }) });
    expect(s.nodes.get("m")).toMatchObject({ title: "Renamed", config: { fps: 24 }, status: "in_progress", position: { x: 1, y: 2 } });
  });

  it("flags events of unknown nodes so the page reloads the structure", () => {
    expect(graphReducer(loaded(), event("ghost", "queued", 1)).stale).toBe(true);
  });

  it("adds and removes nodes", () => {
    let s = graphReducer(loaded(apiNode({ id: "a" })), { kind: "added", node: apiNode({ id: "b" }) });
    expect([...s.nodes.keys()]).toEqual(["a", "b"]);
    s = graphReducer(s, { kind: "removed", id: "a" });
    expect([...s.nodes.keys()]).toEqual(["b"]);
  });
});

describe("derived views", () => {
  const nodes = loaded(
    apiNode({ id: "a", status: "completed", metadata: { cost: 0.25 } }),
    apiNode({ id: "b", status: "failed", metadata: { cost: 0.5 } }),
    apiNode({ id: "m", type: "merge-videos", asset: null, inputs: { segments: ["b", "a", "ghost"] } }),
  ).nodes;
  it("draws one edge per input, numbered in slot order, skipping unknown nodes", () => {
    expect(edgesOf(nodes)).toEqual([
      { id: "b->m.segments", source: "b", target: "m", slot: "segments", order: 1, slotSize: 3 },
      { id: "a->m.segments", source: "a", target: "m", slot: "segments", order: 2, slotSize: 3 },
    ]);
  });
  it("counts statuses and sums cost", () => {
    expect(statusCounts(nodes.values())).toMatchObject({ completed: 1, failed: 1, pending: 1, total: 3 });
    expect(totalCost(nodes.values())).toBe(0.75);
  });
  it("removes a node from inputs and names new nodes readably", () => {
    expect(inputsWithout({ segments: ["a", "b"], other: ["c"] }, "a")).toEqual({ segments: ["b"] });
    expect(inputsWithout({ segments: ["a", "b"] }, "a", "nope")).toEqual({});
    expect(nextNodeId("asset", ["asset-1", "asset-3"])).toBe("asset-2");
  });
});

describe("layout", () => {
  it("places nodes without a position in layers by depth and keeps stored positions", () => {
    const positions = layoutMissing([
      { id: "a", type: "asset", inputs: {} },
      { id: "b", type: "asset", inputs: {}, position: { x: 5, y: 6 } },
      { id: "m", type: "merge-videos", inputs: { segments: ["a", "b"] } },
      { id: "mix", type: "mix-audio", inputs: { video: ["m"] } },
    ]);
    expect(positions.get("a")).toEqual({ x: 0, y: 0 });
    expect(positions.get("b")).toEqual({ x: 5, y: 6 });
    expect(positions.get("m")!.x).toBeGreaterThan(NODE_WIDTH);
    expect(positions.get("mix")!.x).toBeGreaterThan(positions.get("m")!.x);
  });
  it("puts new sources in the first column and other nodes to the right, below what is there", () => {
    expect(placeNewNode("asset", [])).toEqual({ x: 0, y: 0 });
    const first = placeNewNode("asset", [{ position: { x: 0, y: 0 }, height: 200 }]);
    expect(first).toEqual({ x: 0, y: 236 });
    const merge = placeNewNode("merge-videos", [
      { position: { x: 0, y: 0 }, height: 200 },
      { position: { x: 0, y: 236 }, height: 200 },
    ]);
    expect(merge.x).toBeGreaterThan(NODE_WIDTH);
    expect(merge.y).toBe(0);
  });
  it("with a node selected, puts the new node to its right, below anything already there", () => {
    const selected = { position: { x: 400, y: 100 }, width: 264, height: 200 };
    expect(placeNewNode("merge-videos", [selected], selected)).toEqual({ x: 400 + 264 + COLUMN_GAP, y: 100 });
    const taken = { position: { x: 400 + 264 + COLUMN_GAP, y: 50 }, width: 264, height: 300 };
    expect(placeNewNode("asset", [selected, taken], selected)).toEqual({ x: 400 + 264 + COLUMN_GAP, y: 50 + 300 + ROW_GAP });
  });
});

describe("inputSlots", () => {
  it("says what each slot takes in words: how many, of what", () => {
    expect(inputSlots("generate-voiceover").map((s) => [s.slot, s.hint])).toEqual([["script", "up to 1 text"]]);
    expect(inputSlots("merge-videos").map((s) => [s.slot, s.hint])).toEqual([["segments", "2–100 videos"]]);
    expect(inputSlots("mix-audio").map((s) => [s.slot, s.hint])).toEqual([
      ["video", "1 video"],
      ["audio", "1 audio"],
    ]);
  });
});
