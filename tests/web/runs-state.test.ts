/** What the editor makes of the gateway's run answers, without a browser: refusals, estimates, merged problems. */
import { describe, expect, it } from "vitest";
import type { RunEstimate } from "@vp/contracts";
import { ApiError } from "../../web/lib/api";
import { afterEstimateFailure, mergeProblems, refusalOf, shownEstimate, type GatewayEstimate } from "../../web/lib/runs";
import { editorNode as node } from "./nodes";

/** A stored (uploaded) video asset unless `over` says otherwise. */
const editorNode = (over: Parameters<typeof node>[0]) => node({ asset: { type: "video", source: "pipelines/p/x.mp4" }, ...over });

const gatewayEstimate: RunEstimate = {
  estimatedTotalCost: 0.5,
  maxCost: null,
  withinBudget: true,
  costSaved: 0.1,
  nodes: [{ nodeId: "a", type: "asset", estimatedCost: 0.5, source: "execute" }],
};

describe("refusalOf", () => {
  it("shows a 422's message with the problems and estimate it listed", () => {
    const problems = [{ nodeId: "m", slot: "segments", message: "needs at least 2 node(s), got 1" }];
    const error = new ApiError(422, "the pipeline has problems", undefined, { error: "the pipeline has problems", problems, estimate: gatewayEstimate });
    expect(refusalOf("Run all refused", error)).toEqual({
      action: "Run all refused",
      message: "the pipeline has problems",
      problems,
      estimate: gatewayEstimate,
    });
  });

  it("leaves every other failure to a toast", () => {
    expect(refusalOf("Retry refused", new ApiError(0, "unreachable"))).toBeNull();
    expect(refusalOf("Retry refused", new Error("boom"))).toBeNull();
  });
});

describe("estimates", () => {
  it("stop asking a gateway without the route, and keep the last estimate through a passing failure", () => {
    const ok: GatewayEstimate = { phase: "ok", estimate: gatewayEstimate, problems: [] };
    expect(afterEstimateFailure(ok, new ApiError(404, "not found"))).toEqual({ phase: "missing" });
    expect(afterEstimateFailure({ phase: "loading" }, new ApiError(405, "method not allowed"))).toEqual({ phase: "missing" });
    expect(afterEstimateFailure(ok, new ApiError(503, "restarting"))).toBe(ok);
    expect(afterEstimateFailure({ phase: "loading" }, new ApiError(503, "restarting"))).toEqual({ phase: "error", message: "restarting" });
  });

  it("show the gateway's estimate against the current budget, else the browser's", () => {
    const nodes = new Map([["a", editorNode({ id: "a" })]]);
    expect(shownEstimate({ phase: "ok", estimate: gatewayEstimate, problems: [] }, nodes, 0.25)).toMatchObject({
      estimatedTotalCost: 0.5,
      maxCost: 0.25,
      withinBudget: false,
      costSaved: 0.1,
      origin: "gateway",
    });
    expect(shownEstimate({ phase: "missing" }, nodes, null)).toMatchObject({ origin: "browser", withinBudget: true, costSaved: 0 });
  });
});

it("merges the gateway's problems with the browser's, each once, the gateway's first", () => {
  const a = { nodeId: "m", slot: "segments", message: "needs 2" };
  const b = { nodeId: "t", message: "asset has no uploaded file or content" };
  expect(mergeProblems([a], [b, { ...a }])).toEqual([a, b]);
  expect(mergeProblems([], [])).toEqual([]);
});
