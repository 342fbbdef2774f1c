/** AI node configs: what a config may say about Runway durations and HeyGen avatar types, and what each costs. */
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { createPricing, estimateAiCost, GenerateAnimationConfig, runwayDurationFor, runwayDurationProblem, TalkingHeadConfig } from "./config";

const issues = (config: unknown) => {
  const result = GenerateAnimationConfig.safeParse(config);
  return result.success ? [] : result.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
};

describe("GenerateAnimationConfig: Runway durations per model", () => {
  it("refuses a duration the named Runway model does not render, naming the ones it does", () => {
    expect(issues({ provider: "runway", modelId: "gen4.5", durationSeconds: 12 })).toEqual([
      "durationSeconds: Runway gen4.5 renders 2 to 10 whole seconds, not 12",
    ]);
    expect(issues({ provider: "runway", modelId: "gen4_turbo", durationSeconds: 7.5 })).toEqual([
      "durationSeconds: Runway gen4_turbo renders 2 to 10 whole seconds, not 7.5",
    ]);
    // No model named: either default may run (gen4_turbo with an image input, gen4.5 without).
    expect(issues({ provider: "runway", durationSeconds: 1 })).toEqual(["durationSeconds: Runway gen4_turbo and gen4.5 render 2 to 10 whole seconds, not 1"]);
    // A Runway model id names Runway even without a provider.
    expect(issues({ modelId: "gen4.5", durationSeconds: 30 })).toEqual(["durationSeconds: Runway gen4.5 renders 2 to 10 whole seconds, not 30"]);
  });

  it("accepts every duration the model renders, and leaves other providers and unknown models alone", () => {
    for (const durationSeconds of [2, 3, 4, 5, 6, 7, 8, 9, 10]) {
      expect(issues({ provider: "runway", modelId: "gen4_turbo", durationSeconds })).toEqual([]);
      expect(issues({ provider: "runway", durationSeconds })).toEqual([]);
    }
    expect(issues({ provider: "runway" })).toEqual([]);
    expect(issues({ provider: "veo3", durationSeconds: 12 })).toEqual([]); // Veo takes the longest of 4, 6, 8 not above
    expect(issues({ provider: "local", modelId: "gen4.5", durationSeconds: 30 })).toEqual([]);
    expect(issues({ durationSeconds: 30 })).toEqual([]); // the provider is chosen when the node runs
    expect(issues({ provider: "runway", modelId: "some_new_model", durationSeconds: 15 })).toEqual([]); // Runway decides
    expect(issues({ provider: "runway", modelId: "constructor", durationSeconds: 15 })).toEqual([]);
  });

  it("tells the editor form the durations (the field's help text)", () => {
    const json = z.toJSONSchema(GenerateAnimationConfig, { io: "input" }) as { properties: Record<string, { description?: string }> };
    expect(json.properties.durationSeconds!.description).toContain("Runway gen4_turbo and gen4.5: 2 to 10 whole seconds (default 5)");
  });

  it("picks the nearest duration the model renders when no provider was named", () => {
    expect(runwayDurationFor(undefined, "gen4.5")).toBe(5);
    expect(runwayDurationFor(30, "gen4.5")).toBe(10);
    expect(runwayDurationFor(1, "gen4_turbo")).toBe(2);
    expect(runwayDurationFor(6.4, "gen4_turbo")).toBe(6);
    expect(runwayDurationFor(6.5, "gen4_turbo")).toBe(7);
    expect(runwayDurationFor(30, "some_new_model")).toBe(10);
    expect(runwayDurationProblem(["gen4.5"], 10)).toBeNull();
    expect(runwayDurationProblem(["veo3"], 5)).toBeNull();
  });
});

describe("TalkingHeadConfig: HeyGen avatar types", () => {
  it("takes HeyGen's avatar_type names and nothing else", () => {
    for (const avatarType of ["studio_avatar", "digital_twin", "photo_avatar"]) expect(TalkingHeadConfig.safeParse({ avatarType }).success).toBe(true);
    expect(TalkingHeadConfig.safeParse({}).success).toBe(true);
    expect(TalkingHeadConfig.safeParse({ avatarType: "photo" }).success).toBe(false);
  });

  it("prices a photo avatar at $0.05/s (720p/1080p) and $0.0667/s (4K); studio avatars and digital twins higher", () => {
    const p = createPricing();
    expect(p.heygen(30, "1080p", "photo_avatar")).toBe(1.5);
    expect(p.heygen(30, "4k", "photo_avatar")).toBe(2.001);
    expect(p.heygen(30, "720p", "digital_twin")).toBe(2.001);
    expect(p.heygen(30, "4k", "studio_avatar")).toBe(2.499);
    const script = Array.from({ length: 75 }, (_, i) => `w${i}`).join(" "); // 30 s at 150 words per minute
    expect(estimateAiCost("talking-head", "heygen", { script, avatarType: "photo_avatar" })).toBe(1.5);
    expect(estimateAiCost("talking-head", "heygen", { script, avatarType: "photo_avatar", width: 3840, height: 2160 })).toBe(2.001);
    expect(estimateAiCost("talking-head", "heygen", { script })).toBe(2.001);
  });

  it("prices photo avatars as studio avatars when a price table has no photo prices", () => {
    const p = createPricing({ ...createPricing().prices, heygen: { usdPerVideoSecond: 0.1, usdPerVideoSecond4k: 0.2 } });
    expect(p.heygen(10, "1080p", "photo_avatar")).toBe(1);
    expect(p.heygen(10, "4k", "photo_avatar")).toBe(2);
  });
});
