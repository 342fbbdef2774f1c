/** What the editor shows for AI nodes: providers local first, the estimate (shared price table), local drafts. */
import { describe, expect, it } from "vitest";
import { AI_PROVIDERS, CONFIG_SCHEMAS, estimateAiCost } from "@vp/contracts";
import { estimateNode, idSuggestions, isAiType, localDraftLabel, providersOf } from "../../web/lib/ai";

const script = "One two three four five six seven eight nine ten.";
const asset = { id: "s", type: "asset" as const, status: "pending", asset: { type: "text", content: script } };
const lookup = new Map<string, unknown>([["s", asset]]);

describe("providersOf", () => {
  it("lists local first, then every provider the config schema accepts", () => {
    for (const type of Object.keys(AI_PROVIDERS) as Array<keyof typeof AI_PROVIDERS>) {
      const providers = providersOf(type);
      expect(providers[0]).toBe("local");
      expect([...providers].sort()).toEqual([...(CONFIG_SCHEMAS[type].shape.provider.unwrap().options as string[])].sort());
    }
    expect(providersOf("generate-animation")).toEqual(["local", "veo3", "runway"]);
    expect(isAiType("merge-videos")).toBe(false);
  });

  it("suggests ids per provider", () => {
    expect(idSuggestions("generate-voiceover", "voiceId", "local")?.options).toContain("en-us");
    expect(idSuggestions("generate-voiceover", "modelId", "elevenlabs")?.options).toContain("eleven_multilingual_v2");
    expect(idSuggestions("generate-animation", "modelId", "veo3")?.options).toContain("veo-3.0-fast-generate-001");
    expect(idSuggestions("talking-head", "avatarId", "heygen")?.placeholder).toBe("HeyGen avatar id");
    expect(idSuggestions("talking-head", "script", "heygen")).toBeNull();
  });
});

describe("estimateNode", () => {
  it("uses the connected script asset's text, else config.script, with the provider named (local by default)", () => {
    const voice = { id: "v", type: "generate-voiceover" as const, status: "pending", inputs: { script: ["s"] }, config: { speed: 1.5 } };
    expect(estimateNode(voice, lookup)).toEqual({
      usd: estimateAiCost("generate-voiceover", "local", { script, speed: 1.5 }),
      provider: "local",
      source: "editor",
    });
    const paid = { ...voice, inputs: {}, config: { provider: "elevenlabs", script: "Hello there", modelId: "eleven_flash_v2_5" } };
    expect(estimateNode(paid, lookup)!.usd).toBe(estimateAiCost("generate-voiceover", "elevenlabs", { script: "Hello there", modelId: "eleven_flash_v2_5" }));
    const runway = {
      id: "a",
      type: "generate-animation" as const,
      status: "pending",
      inputs: { image: ["i"] },
      config: { provider: "runway", durationSeconds: 6 },
    };
    expect(estimateNode(runway, lookup)!.usd).toBe(estimateAiCost("generate-animation", "runway", { durationSeconds: 6, hasImage: true }));
    const photo = {
      id: "p",
      type: "talking-head" as const,
      status: "pending",
      inputs: { script: ["s"] },
      config: { provider: "heygen", avatarType: "photo_avatar" },
    };
    expect(estimateNode(photo, lookup)!.usd).toBe(estimateAiCost("talking-head", "heygen", { script, avatarType: "photo_avatar" }));
    expect(estimateNode(photo, lookup)!.usd).toBeLessThan(estimateAiCost("talking-head", "heygen", { script }));
  });

  it("prefers the estimate the executor recorded, and is null for ffmpeg nodes", () => {
    const head = { id: "h", type: "talking-head" as const, status: "in_progress", config: {}, metadata: { provider: "local", estimatedCost: 0.00042 } };
    expect(estimateNode(head, lookup)).toEqual({ usd: 0.00042, provider: "local", source: "executor" });
    expect(estimateNode({ id: "m", type: "merge-videos", status: "pending" }, lookup)).toBeNull();
  });
});

describe("localDraftLabel", () => {
  it("labels outputs of local providers only", () => {
    expect(localDraftLabel({ type: "video", provider: "local", local: true, label: "local draft" })).toBe("local draft");
    expect(localDraftLabel({ type: "audio", provider: "local" })).toBe("local draft");
    expect(localDraftLabel({ type: "video", provider: "heygen", providerLabel: "HeyGen" })).toBeNull();
    expect(localDraftLabel(null)).toBeNull();
  });
});
