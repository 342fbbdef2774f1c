/** The node panel's config form comes from the contracts' config schemas: every type, every field. */
import { describe, expect, it } from "vitest";
import { CONFIG_SCHEMAS, NODE_TYPES } from "@vp/contracts";
import { configFields, configPatch, evaluateForm, toRaw } from "../../web/lib/schema-form";

describe("configFields", () => {
  it("has a field for every key of every node type's config schema", () => {
    for (const type of NODE_TYPES) {
      const keys = Object.keys((CONFIG_SCHEMAS[type] as unknown as { shape: Record<string, unknown> }).shape);
      expect(
        configFields(type).map((f) => f.key),
        type,
      ).toEqual(keys);
    }
  });
  it("picks an input per kind", () => {
    const merge = Object.fromEntries(configFields("merge-videos").map((f) => [f.key, f]));
    expect(merge.reencode).toMatchObject({ kind: "enum", options: ["auto", "always"], label: "Reencode" });
    expect(merge.width).toMatchObject({ kind: "number", integer: true, min: 16, max: 7680 });
    expect(merge.fps).toMatchObject({ kind: "number", integer: false, label: "FPS" });
    const code = Object.fromEntries(configFields("render-code").map((f) => [f.key, f]));
    expect(code.code).toMatchObject({ kind: "text", multiline: true });
    expect(code.highlightLines).toMatchObject({ kind: "number-list" });
    const compose = Object.fromEntries(configFields("compose-video").map((f) => [f.key, f]));
    expect(compose.overlays).toMatchObject({ kind: "json" });
  });
});

describe("evaluateForm", () => {
  it("validates with the same schema as the gateway and reports per field", () => {
    const result = evaluateForm("merge-videos", { reencode: "always" }, { width: "5", fps: "thirty", height: "" });
    expect(result.errors).toEqual({ width: "Too small: expected number to be >=16", fps: "must be a number" });
    const ok = evaluateForm("merge-videos", { reencode: "always", height: 480 }, { width: "640", height: "" });
    expect(ok).toEqual({ config: { reencode: "always", width: 640 }, errors: {} });
  });
  it("parses lists and JSON, and round-trips stored values through the inputs", () => {
    const result = evaluateForm("render-code", {}, { highlightLines: "1, 4 5", code: "const a = 1;\n" });
    expect(result).toEqual({ config: { highlightLines: [1, 4, 5], code: "const a = 1;\n" }, errors: {} });
    const fields = Object.fromEntries(configFields("compose-video").map((f) => [f.key, f]));
    expect(evaluateForm("compose-video", {}, { overlays: "[{" }).errors.overlays).toMatch(/^must be valid JSON/);
    const overlays = [{ position: "top-right", size: 0.3 }];
    expect(evaluateForm("compose-video", {}, { overlays: toRaw(fields.overlays!, overlays) }).config).toEqual({ overlays });
  });
});

describe("configPatch", () => {
  it("sends changed keys and null for removed ones (merge patch)", () => {
    expect(configPatch({ a: 1, b: 2 }, { a: 1, c: 3 })).toEqual({ b: null, c: 3 });
    expect(configPatch({ a: [1] }, { a: [1] })).toBeNull();
  });
});
