import { describe, expect, it } from "vitest";
import { PIPELINE_DOCUMENT_FORMAT } from "@vp/contracts";
import { connectionProblem, describeProblem, lookup, toPipelineDocument, validatePipelineDocument, type GraphNode } from "./index";

const doc = (nodes: unknown[], over: Record<string, unknown> = {}) => ({ format: PIPELINE_DOCUMENT_FORMAT, version: 1, title: "Doc", nodes, ...over });
const clip = (id: string, type = "video") => ({ id, title: id, type: "asset", asset: { type } });

describe("validatePipelineDocument", () => {
  it("accepts a valid document and returns it parsed", () => {
    const result = validatePipelineDocument(
      doc([
        clip("a"),
        clip("b"),
        { id: "m", title: "Merge", type: "merge-videos", inputs: { segments: ["a", "b"] }, config: { reencode: "always" }, position: { x: 400, y: 0 } },
        { id: "s", title: "Script", type: "asset", asset: { type: "text", content: "Hello" } },
        { id: "v", title: "Voice", type: "generate-voiceover", inputs: { script: ["s"] } },
      ]),
    );
    expect(result.ok).toBe(true);
    if (result.ok) expect(result.document.nodes.map((n) => n.id)).toEqual(["a", "b", "m", "s", "v"]);
  });

  it("lists every problem, node by node, instead of stopping at the first", () => {
    const result = validatePipelineDocument(
      doc(
        [
          clip("a"),
          clip("au", "audio"),
          { id: "m", title: "Merge", type: "merge-videos", inputs: { segments: ["a", "au", "ghost"] }, config: { width: 3, shell: "rm -rf /" } },
          { id: "m", title: "Again", type: "merge-videos" },
          { title: "No id", type: "teleport" },
          { id: "src", title: "Stored key", type: "asset", asset: { type: "video", source: "/etc/passwd" } },
          { id: "bare", title: "Bare", type: "asset" },
          { id: "x", title: "X", type: "mix-audio", inputs: { video: ["y"], audio: ["au"] } },
          { id: "y", title: "Y", type: "compose-video", inputs: { background: ["x"], overlays: ["a"] } },
        ],
        { version: 2, extra: true },
      ),
    );
    expect(result.ok).toBe(false);
    const lines = result.ok ? [] : result.problems.map(describeProblem);
    expect(lines).toEqual([
      "version: must be 1 (got 2)",
      "extra: unknown field",
      'node "m" config.width: Too small: expected number to be >=16',
      'node "m" config: Unrecognized key: "shell"',
      'node "m" id: duplicate id (also node #3)',
      'node "m" inputs.segments: input "segments" accepts video, but node "au" produces audio',
      'node "m" inputs.segments: input "segments" refers to node "ghost", which does not exist in this pipeline',
      'node "#5" id: Invalid input: expected string, received undefined',
      expect.stringMatching(/^node "#5" type: Invalid option: expected one of "asset"\|/),
      'node "src" asset: Unrecognized key: "source"',
      'node "bare" asset: asset nodes need an asset ({ type: video|audio|text|json|image })',
      'node "x" inputs: inputs form a cycle: x -> y -> x',
    ]);
  });

  it("refuses what is not a document", () => {
    expect(validatePipelineDocument([])).toEqual({ ok: false, problems: [{ message: "the document must be a JSON object" }] });
    const result = validatePipelineDocument({ title: "" });
    expect(result.ok ? [] : result.problems.map(describeProblem)).toEqual([
      `format: must be "${PIPELINE_DOCUMENT_FORMAT}" (got nothing)`,
      "version: must be 1 (got nothing)",
      "title: must not be empty",
      "nodes: must be a list of nodes",
    ]);
  });

  it("round-trips an exported pipeline, without storage keys or execution state", () => {
    const exported = toPipelineDocument({ title: "Show" }, [
      {
        id: "a",
        title: "A",
        type: "asset",
        inputs: {},
        config: {},
        asset: { type: "video", source: "pipelines/p/nodes/a/asset/x.mp4", size: 10 },
        position: { x: 1, y: 2 },
      },
      { id: "t", title: "T", type: "asset", inputs: {}, config: {}, asset: { type: "text", content: "Hi" }, position: null, disabled: true },
      { id: "b", title: "B", type: "asset", inputs: {}, config: {}, asset: { type: "video" }, disabled: false },
      { id: "m", title: "M", type: "merge-videos", inputs: { segments: ["b", "a"] }, config: { reencode: "auto" }, asset: null },
    ]);
    expect(JSON.stringify(exported)).not.toMatch(/"source"|"size"|nodes\/a\/asset/);
    expect(exported.nodes[0]).toEqual({ id: "a", title: "A", type: "asset", inputs: {}, config: {}, asset: { type: "video" }, position: { x: 1, y: 2 } });
    expect(exported.nodes[1]!.asset).toEqual({ type: "text", content: "Hi" });
    // A switched-off node stays off; an enabled one carries nothing.
    expect(exported.nodes[1]!.disabled).toBe(true);
    expect("disabled" in exported.nodes[2]!).toBe(false);
    const again = validatePipelineDocument(JSON.parse(JSON.stringify(exported)));
    expect(again).toEqual({ ok: true, document: exported });
  });

  it("keeps a URL asset's url (where the media comes from, not a storage key)", () => {
    const exported = toPipelineDocument({ title: "Remote" }, [
      {
        id: "u",
        title: "U",
        type: "asset",
        inputs: {},
        config: {},
        asset: { type: "video", url: "https://media.example.com/clip.mp4", source: "pipelines/p/nodes/u/x/output.mp4" },
      },
    ]);
    expect(exported.nodes[0]!.asset).toEqual({ type: "video", url: "https://media.example.com/clip.mp4" });
    expect(validatePipelineDocument(JSON.parse(JSON.stringify(exported)))).toEqual({ ok: true, document: exported });
  });
});

describe("connectionProblem (what the editor shows while dragging)", () => {
  const n = (over: Partial<GraphNode> & { id: string }): GraphNode => ({ type: "asset", inputs: {}, status: "pending", ...over });
  const nodes = lookup([
    n({ id: "v1", asset: { type: "video" } }),
    n({ id: "v2", asset: { type: "video" } }),
    n({ id: "au", asset: { type: "audio" } }),
    n({ id: "txt", asset: { type: "text" } }),
    n({ id: "m", type: "merge-videos", inputs: { segments: ["v1"] } }),
    n({ id: "m2", type: "merge-videos", inputs: { segments: ["m", "v2"] } }),
    n({ id: "voice", type: "generate-voiceover", inputs: { script: ["txt"] } }),
  ]);
  it("allows what the gateway would save", () => {
    expect(connectionProblem(nodes, { source: "v2", target: "m", slot: "segments" })).toBeNull();
  });
  it("refuses a wrong media type, a full slot, a duplicate, an unknown slot, a self-edge and a cycle", () => {
    expect(connectionProblem(nodes, { source: "au", target: "m", slot: "segments" })).toBe('input "segments" accepts video, but node "au" produces audio');
    expect(connectionProblem(nodes, { source: "txt", target: "voice", slot: "script" })).toBe('"txt" is already connected to script');
    expect(connectionProblem(nodes, { source: "m", target: "voice", slot: "script" })).toBe("script takes at most 1 input; it is full");
    expect(connectionProblem(nodes, { source: "v1", target: "m", slot: "clips" })).toBe('merge-videos has no input "clips"');
    expect(connectionProblem(nodes, { source: "m", target: "m", slot: "segments" })).toBe("a node cannot be an input of itself");
    expect(connectionProblem(nodes, { source: "m2", target: "m", slot: "segments" })).toBe("it would create a cycle: m -> m2 -> m");
  });
});
