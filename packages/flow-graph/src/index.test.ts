import { describe, expect, it } from "vitest";
import { findCycle, inputsSatisfied, lookup, notReadyReason, readyToExecute, validateForExecution, validateStructure, type GraphNode } from "./index";

const node = (over: Partial<GraphNode> & { id: string }): GraphNode => ({ type: "asset", inputs: {}, status: "pending", ...over });
const video = (id: string, status: GraphNode["status"] = "completed") =>
  node({ id, status, asset: { type: "video", source: "k" }, output: status === "completed" ? { type: "video", s3Key: `k/${id}` } : null });

describe("inputsSatisfied", () => {
  it("is true when there are no inputs", () => {
    expect(inputsSatisfied(node({ id: "a" }), lookup([]))).toBe(true);
    expect(inputsSatisfied(node({ id: "a", inputs: { segments: [] } }), lookup([]))).toBe(true);
  });
  it("is true when all inputs are completed", () => {
    const nodes = lookup([video("i1"), video("i2")]);
    expect(inputsSatisfied(node({ id: "m", type: "merge-videos", inputs: { segments: ["i1", "i2"] } }), nodes)).toBe(true);
  });
  it("is false when any input is pending", () => {
    const nodes = lookup([video("i1"), video("i2", "pending")]);
    const m = node({ id: "m", type: "merge-videos", inputs: { segments: ["i1", "i2"] } });
    expect(inputsSatisfied(m, nodes)).toBe(false);
    expect(readyToExecute(m, nodes)).toBe(false);
    expect(notReadyReason(m, nodes)).toBe("Node not ready (status: pending, inputs satisfied: false)");
  });
  it("is false when an input does not exist", () => {
    expect(inputsSatisfied(node({ id: "m", inputs: { segments: ["ghost"] } }), lookup([]))).toBe(false);
  });
});

describe("validateStructure", () => {
  it("rejects unknown slots, too many inputs, missing nodes, self-references and wrong media types", () => {
    const audio = node({ id: "au", asset: { type: "audio" } });
    const nodes = lookup([video("v1"), audio]);
    const problems = validateStructure(node({ id: "m", type: "merge-videos", inputs: { segments: ["v1", "au", "ghost", "m"], extra: ["v1"] } }), nodes).map(
      (p) => p.message,
    );
    expect(problems).toEqual([
      'input "segments" accepts video, but node "au" produces audio',
      'input "segments" refers to node "ghost", which does not exist in this pipeline',
      'input "segments" refers to the node itself',
      'merge-videos has no input "extra" (inputs: segments)',
    ]);
    expect(validateStructure(node({ id: "m", type: "mix-audio", inputs: { video: ["v1", "v1"] } }), nodes)[0]?.message).toBe(
      'input "video" takes at most 1 node(s), got 2',
    );
  });
  it("allows a merge with one segment while it is being drawn", () => {
    expect(validateStructure(node({ id: "m", type: "merge-videos", inputs: { segments: ["v1"] } }), lookup([video("v1")]))).toEqual([]);
  });
});

describe("validateForExecution", () => {
  it("needs at least two segments for a merge", () => {
    const problems = validateForExecution(node({ id: "m", type: "merge-videos", inputs: { segments: ["v1"] } }), lookup([video("v1")]));
    expect(problems.map((p) => p.message)).toEqual(['input "segments" needs at least 2 node(s), got 1']);
  });
  it("refuses a completed segment without an output", () => {
    const broken = node({ id: "v2", status: "completed", asset: { type: "video" }, output: null });
    const problems = validateForExecution(node({ id: "m", type: "merge-videos", inputs: { segments: ["v1", "v2"] } }), lookup([video("v1"), broken]));
    expect(problems.map((p) => p.message)).toEqual(['input "segments": node "v2" is completed but has no output']);
  });
  it("refuses an asset without a file or content", () => {
    expect(validateForExecution(node({ id: "a", asset: { type: "video" } }), lookup([])).map((p) => p.message)).toEqual([
      "asset has no uploaded file or content",
    ]);
  });
  it("accepts a ready merge", () => {
    expect(validateForExecution(node({ id: "m", type: "merge-videos", inputs: { segments: ["v1", "v2"] } }), lookup([video("v1"), video("v2")]))).toEqual([]);
  });
});

describe("findCycle", () => {
  it("finds a cycle and returns null for a DAG", () => {
    const a = node({ id: "a", type: "merge-videos", inputs: { segments: ["b", "c"] } });
    const b = node({ id: "b", type: "merge-videos", inputs: { segments: ["a", "c"] } });
    const c = video("c");
    expect(findCycle(lookup([a, b, c]))).toEqual(["a", "b", "a"]);
    expect(findCycle(lookup([node({ id: "a", type: "merge-videos", inputs: { segments: ["c", "c"] } }), c]))).toBeNull();
  });
});
