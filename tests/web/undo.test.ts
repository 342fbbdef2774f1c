/** The editor's undo history without a browser: inverse patches, re-creating a deleted node, labels, the two stacks. */
import { describe, expect, it } from "vitest";
import { describePatch, inversePatch, nodeBody, UndoHistory, type UndoEntry } from "../../web/lib/undo";
import { editorNode, graph } from "./nodes";

const voice = editorNode({
  id: "voice",
  title: "Voiceover",
  type: "generate-voiceover",
  inputs: { script: ["script"] },
  config: { provider: "local", speed: 1 },
  position: { x: 10, y: 20 },
});
const script = editorNode({ id: "script", title: "Script", asset: { type: "text", content: "Hello" } });
const intro = editorNode({ id: "intro", title: "Intro", asset: { type: "video", source: "pipelines/p/nodes/intro/asset/a.mp4", size: 10 } });

describe("inversePatch", () => {
  it("puts back each field the patch changes: config keys (removing ones that were absent), inputs by slot, title, position, disabled", () => {
    expect(inversePatch(voice, { config: { speed: 1.5, pitch: 40 } })).toEqual({ config: { speed: 1, pitch: null } });
    expect(inversePatch(voice, { config: { speed: null } })).toEqual({ config: { speed: 1 } });
    expect(inversePatch(voice, { inputs: { script: [] } })).toEqual({ inputs: { script: ["script"] } });
    expect(inversePatch(voice, { inputs: { other: ["x"] } })).toEqual({ inputs: { other: [] } });
    expect(inversePatch(voice, { title: "Narration" })).toEqual({ title: "Voiceover" });
    expect(inversePatch(voice, { position: { x: 300, y: 0 } })).toEqual({ position: { x: 10, y: 20 } });
    expect(inversePatch(voice, { disabled: true })).toEqual({ disabled: false });
    expect(inversePatch(script, { asset: { content: "Hello there" } })).toEqual({ asset: { content: "Hello" } });
  });

  it("is the exact way back: applying the patch, then its inverse, gives the config that was there", () => {
    const patch = { config: { speed: 2, voiceId: "en-gb" } };
    const applied = { ...voice.config, ...patch.config };
    const inverse = inversePatch(voice, patch);
    const back = Object.fromEntries(Object.entries({ ...applied, ...inverse.config }).filter(([, v]) => v !== null));
    expect(back).toEqual(voice.config);
  });
});

describe("nodeBody", () => {
  it("re-creates a node's structure: id, title, type, inputs, config, position; text content, never an uploaded file's key", () => {
    expect(nodeBody(voice)).toEqual({
      id: "voice",
      title: "Voiceover",
      type: "generate-voiceover",
      inputs: { script: ["script"] },
      config: { provider: "local", speed: 1 },
      position: { x: 10, y: 20 },
    });
    expect(nodeBody(script).asset).toEqual({ type: "text", content: "Hello" });
    expect(nodeBody(intro).asset).toEqual({ type: "video" });
    expect(nodeBody({ ...voice, disabled: true }).disabled).toBe(true);
  });
});

describe("describePatch", () => {
  it("names the edit by what changed and the nodes' titles", () => {
    const nodes = graph(voice, script, intro);
    expect(describePatch(voice, { config: { speed: 1.5 } }, nodes)).toBe('Change speed of "Voiceover"');
    expect(describePatch(voice, { inputs: { script: [] } }, nodes)).toBe('Disconnect "Script" from "Voiceover"');
    const merge = editorNode({ id: "m", title: "Final", type: "merge-videos", inputs: { segments: ["intro"] } });
    expect(describePatch(merge, { inputs: { segments: ["intro", "script"] } }, graph(merge, script, intro))).toBe('Connect "Script" to "Final"');
    expect(describePatch(voice, { title: "Narration" }, nodes)).toBe('Rename "Voiceover"');
    expect(describePatch(voice, { disabled: true }, nodes)).toBe('Disable "Voiceover"');
    expect(describePatch(voice, { position: { x: 0, y: 0 } }, nodes)).toBe('Move "Voiceover"');
  });
});

describe("UndoHistory", () => {
  const entry = (label: string): UndoEntry => ({ label, undo: [], redo: [] });

  it("undoes newest first, redoes what was undone, and a new edit clears what could be redone", () => {
    const h = new UndoHistory();
    const [a, b, c] = [entry("a"), entry("b"), entry("c")];
    h.record(a);
    h.record(b);
    expect(h.nextUndo).toBe(b);
    h.markUndone(b);
    expect([h.nextUndo, h.nextRedo]).toEqual([a, b]);
    h.markRedone(b);
    expect([h.nextUndo, h.nextRedo]).toEqual([b, undefined]);
    h.markUndone(b);
    h.record(c);
    expect([h.nextUndo, h.nextRedo]).toEqual([c, undefined]);
  });

  it("moves an entry only when it is the one on top (a late answer for another entry changes nothing), and keeps at most `limit`", () => {
    const h = new UndoHistory(2);
    const [a, b, c] = [entry("a"), entry("b"), entry("c")];
    h.record(a);
    h.record(b);
    h.markUndone(a);
    expect([h.nextUndo, h.nextRedo]).toEqual([b, undefined]);
    h.record(c);
    h.markUndone(c);
    h.markUndone(b);
    expect([h.nextUndo, h.nextRedo]).toEqual([undefined, b]);
  });
});
