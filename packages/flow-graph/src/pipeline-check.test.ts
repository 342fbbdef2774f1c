import { describe, expect, it } from "vitest";
import { checkPipeline, findCycles, type GraphNode } from "./index";

const node = (over: Partial<GraphNode> & { id: string }): GraphNode => ({ type: "asset", inputs: {}, status: "pending", ...over });
const videoAsset = (id: string) => node({ id, asset: { type: "video", source: "k" } });
const textAsset = (id: string) => node({ id, asset: { type: "text", content: "hi" } });

describe("checkPipeline", () => {
  it("reports a cycle, a dangling input, a type mismatch and a missing required input in one pass, node by node", () => {
    const problems = checkPipeline([
      videoAsset("v1"),
      textAsset("t1"),
      node({ id: "a", type: "merge-videos", inputs: { segments: ["v1", "b"] } }),
      node({ id: "b", type: "merge-videos", inputs: { segments: ["v1", "a"] } }),
      node({ id: "d", type: "merge-videos", inputs: { segments: ["v1", "ghost"] } }),
      node({ id: "m", type: "merge-videos", inputs: { segments: ["v1", "t1"] } }),
      node({ id: "c", type: "compose-video", inputs: { background: ["v1"] } }),
    ]);
    expect(problems).toEqual([
      { nodeId: "a", message: "is part of a cycle: a -> b -> a" },
      { nodeId: "b", message: "is part of a cycle: a -> b -> a" },
      { nodeId: "d", slot: "segments", message: 'input "segments" refers to node "ghost", which does not exist in this pipeline' },
      { nodeId: "m", slot: "segments", message: 'input "segments" accepts video, but node "t1" produces text' },
      { nodeId: "c", slot: "overlays", message: 'input "overlays" needs at least 1 node(s), got 0' },
    ]);
  });

  it("accepts a valid pipeline whose inputs are not run yet, and checks completed inputs' stored outputs", () => {
    const ok = [videoAsset("v1"), videoAsset("v2"), node({ id: "m", type: "merge-videos", inputs: { segments: ["v1", "v2"] } })];
    expect(checkPipeline(ok)).toEqual([]);
    const noOutput = [{ ...videoAsset("v1"), status: "completed" as const }, videoAsset("v2"), ok[2]!];
    expect(checkPipeline(noOutput)).toEqual([{ nodeId: "m", slot: "segments", message: 'input "segments": node "v1" is completed but has no output' }]);
  });

  it("checks only the run's members when given (run to here), and an asset without content", () => {
    const nodes = [node({ id: "empty", asset: { type: "text" } }), textAsset("t"), node({ id: "bad", type: "merge-videos", inputs: {} })];
    expect(checkPipeline(nodes, ["empty", "t"])).toEqual([{ nodeId: "empty", message: "asset has no uploaded file or content" }]);
  });

  it("finds every cycle of a 1,000-node chain closed on itself without recursion", () => {
    const n = 1000;
    const nodes = new Map<string, GraphNode>();
    for (let i = 0; i < n; i++) nodes.set(`n${i}`, node({ id: `n${i}`, type: "talking-head", inputs: { script: [`n${(i + 1) % n}`] } }));
    const cycles = findCycles(nodes);
    expect(cycles).toHaveLength(1);
    expect(cycles[0]).toHaveLength(n + 1);
  });
});
