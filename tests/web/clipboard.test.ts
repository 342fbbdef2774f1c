/** Copy and paste of nodes without a browser: what travels, fresh ids, kept and dropped connections, creation order. */
import { describe, expect, it } from "vitest";
import { CLIPBOARD_FORMAT, copyText, parseCopied, pasteBodies, PASTE_OFFSET } from "../../web/lib/clipboard";
import { editorNode, graph } from "./nodes";

const script = editorNode({ id: "script", title: "Script", asset: { type: "text", content: "Hello" }, position: { x: 0, y: 0 } });
const intro = editorNode({ id: "intro", title: "Intro", asset: { type: "video", source: "pipelines/p/nodes/intro/asset/a.mp4" }, status: "completed" });
const voice = editorNode({
  id: "voice",
  title: "Voiceover",
  type: "generate-voiceover",
  inputs: { script: ["script"] },
  config: { provider: "local" },
  position: { x: 300, y: 0 },
});
const nodes = graph(script, intro, voice);

describe("copyText / parseCopied", () => {
  it("carries the selected nodes' structure only: no status, result or uploaded file's key", () => {
    const text = copyText(nodes, ["voice", "intro"]);
    const copied = parseCopied(text)!;
    expect(copied.map((n) => n.id)).toEqual(["intro", "voice"]);
    expect(text).not.toMatch(/pipelines\/p\/nodes|completed/);
    expect(copied[1]).toEqual({
      id: "voice",
      title: "Voiceover",
      type: "generate-voiceover",
      inputs: { script: ["script"] },
      config: { provider: "local" },
      position: { x: 300, y: 0 },
    });
  });

  it("is null for any other text: plain words, other JSON, a document with a bad node", () => {
    expect(parseCopied("hello")).toBeNull();
    expect(parseCopied(JSON.stringify({ nodes: [] }))).toBeNull();
    expect(parseCopied(JSON.stringify({ format: CLIPBOARD_FORMAT, version: 1, nodes: [{ id: "../x", title: "X", type: "asset" }] }))).toBeNull();
  });
});

describe("pasteBodies", () => {
  it("into the same pipeline: fresh ids, titles marked as copies, the connection to a node outside the copy kept, moved by the offset", () => {
    const bodies = pasteBodies(parseCopied(copyText(nodes, ["voice"]))!, nodes);
    expect(bodies).toEqual([
      {
        id: "generate-voiceover-1",
        title: "Voiceover (copy)",
        type: "generate-voiceover",
        inputs: { script: ["script"] },
        config: { provider: "local" },
        position: { x: 300 + PASTE_OFFSET, y: PASTE_OFFSET },
      },
    ]);
  });

  it("into another pipeline: connections between copied nodes follow the new ids, ones to absent nodes are dropped; upstream first", () => {
    const copied = parseCopied(copyText(nodes, ["voice", "script"]))!.reverse();
    const elsewhere = graph(editorNode({ id: "script", title: "Other script" }));
    const bodies = pasteBodies(copied, elsewhere);
    expect(bodies.map((b) => [b.id, b.title, b.inputs])).toEqual([
      ["asset-1", "Script", {}],
      ["voice", "Voiceover", { script: ["asset-1"] }],
    ]);
    const lonely = pasteBodies(parseCopied(copyText(nodes, ["voice"]))!, graph());
    expect(lonely[0]!.inputs).toEqual({ script: [] });
  });
});
