import type { Variable } from "@vp/contracts";
import { Variables } from "@vp/contracts";
import { describe, expect, it } from "vitest";
import { defaultValues, placeholdersIn, resolveNode, substitute, unfilledProblems, variableDependents, variableProblems, type VariableNode } from "./variables";

const vars: Variable[] = [
  { name: "name", type: "text" },
  { name: "count", type: "number", default: 3 },
  { name: "intro", type: "video" },
];

describe("variables", () => {
  it("finds placeholders once each, spaces inside the braces allowed, and fills only known ones", () => {
    expect(placeholdersIn("Hi {{name}}, {{ name }} and {{count}} {{ not a placeholder }}")).toEqual(["name", "count"]);
    expect(substitute("Hi {{ name }}, {{count}} {{other}}", { name: "Ada", count: 2.5 })).toBe("Hi Ada, 2.5 {{other}}");
  });

  it("declarations: names checked, duplicates and a default of the wrong kind refused", () => {
    expect(Variables.safeParse(vars).success).toBe(true);
    const bad = Variables.safeParse([
      { name: "a", type: "text", default: 1 },
      { name: "a", type: "number", default: "x" },
      { name: "1x", type: "text" },
      { name: "clip", type: "video", default: "https://example.com/a.mp4" },
    ]);
    expect(bad.success).toBe(false);
    expect(bad.error!.issues.map((i) => `${i.path.join(".")}: ${i.message}`).sort()).toEqual([
      "0.default: must be text for a text variable",
      "1.default: must be a number for a number variable",
      '1.name: "a" is declared twice',
      "2.name: must start with a letter or _, then letters, digits or _ (at most 40 characters)",
      "3.default: a video variable has no default: its bound asset's own file is used",
    ]);
  });

  it("lists every placeholder and binding problem, node by node", () => {
    const nodes: VariableNode[] = [
      { id: "script", asset: { type: "text", content: "Hello {{name}}, from {{company}} and {{intro}}" } },
      { id: "th", config: { caption: { text: "{{count}} tips for {{who}}" } } },
      { id: "clip", asset: { type: "video", variable: "intro" } },
      { id: "music", asset: { type: "audio", variable: "intro" } },
      { id: "note", asset: { type: "text", variable: "name" } },
      { id: "logo", asset: { type: "image", variable: "logo" } },
    ];
    expect(variableProblems(nodes, vars)).toEqual([
      { nodeId: "script", slot: "asset", message: "asset uses {{company}}, which is not a variable of this pipeline" },
      { nodeId: "script", slot: "asset", message: "asset uses {{intro}}, a video variable: only text and number variables go into text" },
      { nodeId: "th", slot: "config.caption.text", message: "config.caption.text uses {{who}}, which is not a variable of this pipeline" },
      { nodeId: "music", slot: "asset", message: 'an audio asset cannot be bound to "intro", a video variable' },
      { nodeId: "note", slot: "asset", message: "only a video, audio or image asset can be bound to a variable; this one is text" },
      { nodeId: "logo", slot: "asset", message: 'the asset is bound to "logo", which is not a variable of this pipeline' },
    ]);
  });

  it("resolves a node's text and config strings; a node without placeholders is returned as it is", () => {
    const node = { id: "s", asset: { type: "text", content: "Hi {{name}}" }, config: { style: ["{{count}}px", 4] } };
    expect(resolveNode(node, { name: "Ada", ...defaultValues(vars) })).toEqual({
      id: "s",
      asset: { type: "text", content: "Hi Ada" },
      config: { style: ["3px", 4] },
    });
    const plain = { id: "p", asset: { type: "text", content: "no placeholder" }, config: {} };
    expect(resolveNode(plain, { name: "Ada" })).toBe(plain);
  });

  it("a run without a value for a variable that has no default is refused per node", () => {
    const nodes: VariableNode[] = [{ id: "script", asset: { type: "text", content: "Hi {{name}}, {{count}}" } }];
    expect(unfilledProblems(nodes, vars, defaultValues(vars))).toEqual([
      { nodeId: "script", message: "uses {{name}}, which has no default and no value in this run" },
    ]);
    expect(unfilledProblems(nodes, vars, { name: "Ada" })).toEqual([]);
  });

  it("the nodes that depend on a variable, transitively; the rest is shared by every row", () => {
    const nodes = new Map<string, VariableNode>([
      ["intro", { id: "intro", asset: { type: "video" }, inputs: {} }],
      ["script", { id: "script", asset: { type: "text", content: "Hi {{name}}" }, inputs: {} }],
      ["voice", { id: "voice", inputs: { script: ["script"] } }],
      ["merge", { id: "merge", inputs: { segments: ["intro", "voice"] } }],
      ["code", { id: "code", config: { code: "print(1)" }, inputs: {} }],
    ]);
    expect([...variableDependents(nodes)].sort()).toEqual(["merge", "script", "voice"]);
  });
});
