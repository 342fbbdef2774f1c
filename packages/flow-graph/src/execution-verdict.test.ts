import { describe, expect, it } from "vitest";
import { executionVerdict } from "./execution-verdict";
import { lookup, type GraphNode } from "./index";

const node = (over: Partial<GraphNode> & { id: string }): GraphNode => ({ type: "asset", inputs: {}, status: "pending", ...over });
const video = (id: string, status: GraphNode["status"] = "completed") =>
  node({ id, status, asset: { type: "video", source: "k" }, output: status === "completed" ? { type: "video", s3Key: `k/${id}` } : null });
const merge = (segments: string[], status: GraphNode["status"] = "pending") => node({ id: "m", type: "merge-videos", inputs: { segments }, status });

describe("executionVerdict", () => {
  it("accepts a pending node whose inputs are completed and valid", () => {
    expect(executionVerdict(merge(["v1", "v2"]), lookup([video("v1"), video("v2")]))).toEqual({ ok: true });
  });

  it("refuses a node with an input that is not completed, without problems", () => {
    expect(executionVerdict(merge(["v1", "v2"]), lookup([video("v1"), video("v2", "pending")]))).toEqual({
      ok: false,
      reason: "Node not ready (status: pending, inputs satisfied: false)",
      problems: [],
    });
  });

  it("refuses a node that is not pending, before validating its inputs", () => {
    expect(executionVerdict(merge(["v1"], "completed"), lookup([video("v1")]))).toEqual({
      ok: false,
      reason: "Node not ready (status: completed, inputs satisfied: true)",
      problems: [],
    });
  });

  it("refuses a ready node whose inputs do not fit its type, with the problems and their formatted reason", () => {
    const audio = node({ id: "au", status: "completed", asset: { type: "audio" }, output: { type: "audio", s3Key: "k/au" } });
    expect(executionVerdict(merge(["v1", "au"]), lookup([video("v1"), audio]))).toEqual({
      ok: false,
      reason: 'm.segments: input "segments" accepts video, but node "au" produces audio',
      problems: [{ nodeId: "m", slot: "segments", message: 'input "segments" accepts video, but node "au" produces audio' }],
    });
  });

  it("lists each missing-output and count problem of an execution check", () => {
    const broken = node({ id: "v2", status: "completed", asset: { type: "video" }, output: null });
    const verdict = executionVerdict(merge(["v2"]), lookup([broken]));
    expect(verdict).toEqual({
      ok: false,
      reason: 'm.segments: input "segments" needs at least 2 node(s), got 1; m.segments: input "segments": node "v2" is completed but has no output',
      problems: [
        { nodeId: "m", slot: "segments", message: 'input "segments" needs at least 2 node(s), got 1' },
        { nodeId: "m", slot: "segments", message: 'input "segments": node "v2" is completed but has no output' },
      ],
    });
  });
});
