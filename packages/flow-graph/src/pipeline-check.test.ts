import { describe, expect, it } from "vitest";
import { blockedByDisabled, checkPipeline, executionVerdict, findCycles, formatProblems, lookup, selectRunMembers, type GraphNode } from "./index";

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

describe("problems name nodes by title", () => {
  it("names other nodes by title with the id after it, in messages, cycles and the one-line text", () => {
    const nodes = [
      { ...videoAsset("v1"), title: "Intro clip" },
      { ...textAsset("t1"), title: "Notes" },
      node({ id: "a", title: "Cut A", type: "merge-videos", inputs: { segments: ["v1", "b"] } }),
      node({ id: "b", title: "Cut B", type: "merge-videos", inputs: { segments: ["v1", "a"] } }),
      node({ id: "m", title: "Final merge", type: "merge-videos", inputs: { segments: ["v1", "t1", "ghost"] } }),
      node({ id: "same", title: "same", type: "merge-videos", inputs: { segments: ["v1"] } }),
    ];
    const problems = checkPipeline(nodes);
    // The structured field keeps the id; the text is for people.
    expect(problems).toEqual([
      { nodeId: "a", message: 'is part of a cycle: "Cut A" (a) -> "Cut B" (b) -> "Cut A" (a)' },
      { nodeId: "b", message: 'is part of a cycle: "Cut A" (a) -> "Cut B" (b) -> "Cut A" (a)' },
      { nodeId: "m", slot: "segments", message: 'input "segments" accepts video, but "Notes" (t1) produces text' },
      { nodeId: "m", slot: "segments", message: 'input "segments" refers to node "ghost", which does not exist in this pipeline' },
      { nodeId: "same", slot: "segments", message: 'input "segments" needs at least 2 node(s), got 1' },
    ]);
    expect(formatProblems(problems.slice(2, 3), lookup(nodes))).toBe(
      '"Final merge" (m).segments: input "segments" accepts video, but "Notes" (t1) produces text',
    );
    // A title equal to the id (or none) leaves the id alone.
    expect(formatProblems(problems.slice(4), lookup(nodes))).toBe('same.segments: input "segments" needs at least 2 node(s), got 1');
    expect(formatProblems(problems.slice(2, 3))).toMatch(/^m\.segments: /);
  });

  it("a single execute's refusal names the node and its input by title", () => {
    const input = { ...videoAsset("v1"), title: "Intro clip", status: "completed" as const, output: { type: "video" } };
    const other = { ...videoAsset("v2"), status: "completed" as const, output: { type: "video", s3Key: "k2" } };
    const merge = node({ id: "m", title: "Final merge", type: "merge-videos", inputs: { segments: ["v1", "v2"] } });
    const verdict = executionVerdict(merge, lookup([input, other]));
    expect(verdict).toEqual({
      ok: false,
      reason: '"Final merge" (m).segments: input "segments": "Intro clip" (v1) is completed but has no output',
      problems: [{ nodeId: "m", slot: "segments", message: 'input "segments": "Intro clip" (v1) is completed but has no output' }],
    });
  });
});

describe("disabled nodes", () => {
  it("an execute of a disabled node, or of a node fed by one, is refused with the reason; selectRunMembers leaves them out", () => {
    const intro = { ...videoAsset("v1"), title: "Intro", disabled: true };
    const outro = videoAsset("v2");
    const final = node({ id: "m", title: "Final", type: "merge-videos", inputs: { segments: ["v1", "v2"] } });
    const nodes = lookup([intro, outro, final]);
    expect(executionVerdict(intro, nodes)).toEqual({ ok: false, reason: '"Intro" (v1) is disabled: enable it to run it', problems: [] });
    expect(executionVerdict(final, nodes)).toEqual({
      ok: false,
      reason: '"Final" (m) cannot run: its input "Intro" (v1) is disabled (enable it first)',
      problems: [],
    });
    expect(executionVerdict(outro, nodes)).toEqual({ ok: true });
    expect(blockedByDisabled([intro, outro, final])).toEqual(
      new Map([
        ["v1", "v1"],
        ["m", "v1"],
      ]),
    );
    expect(selectRunMembers([intro, outro, final])).toEqual(["v2"]);
    expect(selectRunMembers([{ ...intro, disabled: false }, outro, final])).toEqual(["v1", "v2", "m"]);
  });
});
