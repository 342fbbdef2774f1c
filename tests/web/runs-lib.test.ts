/** The editor's run helpers, without a browser: problems per node, the browser's estimate, history rows, budgets. */
import { describe, expect, it } from "vitest";
import { estimateAiCost, type RunRecord } from "@vp/contracts";
import { browserEstimate, cacheInfo, formatBudget, groupProblems, pipelineProblems, runRow, structureSignature } from "../../web/lib/runs";
import { exactCost, formatCost } from "../../web/lib/format";
import { editorNode as node, graph } from "./nodes";

/** A stored (uploaded) video asset unless `over` says otherwise. */
const editorNode = (over: Parameters<typeof node>[0]) => node({ asset: { type: "video", source: "pipelines/p/x.mp4" }, ...over });

const run = (over: Partial<RunRecord>): RunRecord => ({
  id: "r1",
  pipeline_id: "p",
  kind: "all",
  target_node_id: null,
  node_ids: ["a", "m"],
  status: "running",
  metadata: {},
  created_at: "2026-11-21T08:00:00.000Z",
  finished_at: null,
  ...over,
});

describe("problems", () => {
  it("are the gateway's whole-pipeline check, grouped by node in order", () => {
    const nodes = graph(
      editorNode({ id: "a" }),
      editorNode({ id: "t", asset: { type: "text", content: "x" } }),
      editorNode({ id: "m", type: "merge-videos", inputs: { segments: ["a", "t"] } }),
      editorNode({ id: "n", type: "merge-videos", inputs: { segments: ["a"] } }),
    );
    const problems = pipelineProblems(nodes);
    expect(problems).toEqual([
      { nodeId: "m", slot: "segments", message: 'input "segments" accepts video, but node "t" produces text' },
      { nodeId: "n", slot: "segments", message: 'input "segments" needs at least 2 node(s), got 1' },
    ]);
    expect([...groupProblems(problems).keys()]).toEqual(["m", "n"]);
  });

  it("leave completed nodes alone (they are only inputs to a run)", () => {
    const nodes = graph(editorNode({ id: "a", status: "completed", output: { type: "video", s3Key: "k" } }), editorNode({ id: "b", asset: { type: "video" } }));
    expect(pipelineProblems(nodes)).toEqual([{ nodeId: "b", message: "asset has no uploaded file or content" }]);
  });
});

describe("browserEstimate", () => {
  it("prices the members with the shared price table, counts completed nodes as up to date, and checks the budget", () => {
    const script = "Hello there, this is the script.";
    const nodes = graph(
      editorNode({ id: "s", asset: { type: "text", content: script }, status: "completed", output: { type: "text", s3Key: "k" } }),
      editorNode({ id: "vo", type: "generate-voiceover", inputs: { script: ["s"] }, config: { provider: "elevenlabs" } }),
    );
    const usd = estimateAiCost("generate-voiceover", "elevenlabs", { script });
    expect(usd).toBeGreaterThan(0);
    expect(browserEstimate(nodes, null)).toEqual({
      estimatedTotalCost: usd,
      maxCost: null,
      withinBudget: true,
      costSaved: 0,
      nodes: [
        { nodeId: "s", type: "asset", estimatedCost: 0, source: "up-to-date" },
        { nodeId: "vo", type: "generate-voiceover", estimatedCost: usd, source: "execute" },
      ],
      origin: "browser",
    });
    expect(browserEstimate(nodes, usd / 2).withinBudget).toBe(false);
  });
});

describe("runRow", () => {
  const nodes = graph(editorNode({ id: "a", status: "completed" }), editorNode({ id: "m", title: "Merge", status: "in_progress" }));

  it("counts a running run from the live statuses of its members", () => {
    expect(runRow(run({}), nodes)).toMatchObject({ label: "Run all", status: "running", total: 2, counts: { completed: 1, running: 1, waiting: 0 } });
  });

  it("takes a finished run's recorded counts, reuse and costs, and names the target", () => {
    const row = runRow(
      run({
        kind: "retry",
        target_node_id: "m",
        status: "completed",
        finished_at: "2026-11-21T08:00:03.000Z",
        metadata: { counts: { completed: 2, failed: 0, cancelled: 0 }, executed: 1, cached: 1, upToDate: 0, totalCost: 0.5, costSaved: 0.25 },
      }),
      nodes,
    );
    expect(row).toMatchObject({
      label: "Retry · Merge and dependants",
      counts: { completed: 2, failed: 0, cancelled: 0, running: 0, waiting: 0 },
      executed: 1,
      cached: 1,
      upToDate: 0,
      totalCost: 0.5,
      costSaved: 0.25,
    });
  });
});

describe("small helpers", () => {
  it("formatBudget keeps whole cents as typed", () => {
    expect([formatBudget(null), formatBudget(0.05), formatBudget(12), formatBudget(0.0025)]).toEqual(["none", "$0.05", "$12.00", "$0.0025"]);
    expect(formatBudget(0.0001)).toBe("$0.0001");
  });

  it("cacheInfo only for completed nodes made from the cache", () => {
    const cached = editorNode({
      id: "c",
      status: "completed",
      metadata: { cached: true, costSaved: 0.3, cachedFrom: { pipelineId: "q", nodeId: "c", runId: "r" } },
    });
    expect(cacheInfo(cached)).toEqual({ cached: true, costSaved: 0.3, from: { pipelineId: "q", nodeId: "c", runId: "r" } });
    expect(cacheInfo({ ...cached, status: "pending" })).toBeNull();
    expect(cacheInfo(editorNode({ id: "d", status: "completed", metadata: { cost: 1 } }))).toBeNull();
  });

  it("structureSignature changes with the graph, not with progress", () => {
    const a = graph(editorNode({ id: "a", status: "in_progress" }));
    const b = graph(editorNode({ id: "a", status: "in_progress", metadata: { progress: 50 } }));
    const c = graph(editorNode({ id: "a", inputs: {}, config: { x: 1 } }));
    expect(structureSignature(a)).toBe(structureSignature(b));
    expect(structureSignature(a)).not.toBe(structureSignature(c));
  });
});

describe("formatCost", () => {
  it('shows cents, and an amount under a cent as "< $0.01" with the exact amount for its hover text', () => {
    expect([0, 0.00013, 0.000003, 0.004, 0.012, 1.5, 12.3].map(formatCost)).toEqual(["$0.00", "< $0.01", "< $0.01", "< $0.01", "$0.01", "$1.50", "$12.30"]);
    expect([formatCost(undefined), formatCost(null), formatCost(Number.NaN)]).toEqual(["$0.00", "$0.00", "$0.00"]);
    expect([0.00013, 0.000003, 0.05, 2.5, 2.561234, 0].map(exactCost)).toEqual(["$0.00013", "$0.000003", "$0.05", "$2.50", "$2.561234", "$0.00"]);
  });
});
