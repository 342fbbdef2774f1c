/** Provider choice, environment and prices: what decides where a node runs and what it may cost. */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createClients } from "./clients";
import { jobTopologyOptions } from "@vp/runtime";
import { loadEnv } from "./env";
import { WorkInputError, type PaidProvider } from "./errors";
import { createPricing, DEFAULT_PRICES, estimateAiCost, loadPriceTable, spokenSeconds } from "./pricing";
import { selectProvider } from "./handlers/common";

const none = new Set<PaidProvider>();

describe("selectProvider", () => {
  it("defaults to local without keys, and to the configured paid provider with one (Veo before Runway)", () => {
    expect(selectProvider("talking-head", undefined, none)).toBe("local");
    expect(selectProvider("talking-head", undefined, new Set(["heygen"]))).toBe("heygen");
    expect(selectProvider("generate-animation", undefined, new Set(["runway"]))).toBe("runway");
    expect(selectProvider("generate-animation", undefined, new Set(["runway", "veo3"]))).toBe("veo3");
    expect(selectProvider("generate-animation", "local", new Set(["runway", "veo3"]))).toBe("local");
  });

  it("a named paid provider needs its key; a provider of another type is refused", () => {
    expect(() => selectProvider("talking-head", "heygen", none)).toThrow(new WorkInputError("HEYGEN_API_KEY is not configured"));
    expect(() => selectProvider("generate-voiceover", "elevenlabs", none)).toThrow("ELEVENLABS_API_KEY is not configured");
    expect(() => selectProvider("generate-animation", "veo3", new Set(["runway"]))).toThrow("GEMINI_API_KEY is not configured");
    expect(() => selectProvider("generate-voiceover", "heygen", new Set(["heygen"]))).toThrow('generate-voiceover has no provider "heygen"');
  });
});

describe("env and clients", () => {
  const base = { JOB_ACK_WAIT_MS: "30000" };

  it("builds clients only for configured keys, at the configured base URLs; empty keys count as missing", () => {
    const env = loadEnv({ ...base, HEYGEN_API_KEY: "hk-1234", RUNWAY_API_KEY: "", VEO_API_KEY: "vk-5678", HEYGEN_BASE_URL: "http://127.0.0.1:4010" });
    const { clients, configured, urlPolicy, secrets } = createClients(env);
    expect(configured.sort()).toEqual(["heygen", "veo3"]);
    expect(clients.heygen!.http.origin).toBe("http://127.0.0.1:4010");
    expect(clients.veo3!.http.origin).toBe("https://generativelanguage.googleapis.com");
    expect(clients.runway).toBeUndefined();
    expect(urlPolicy.trustedOrigins).toContain("http://127.0.0.1:4010");
    expect(secrets).toMatchObject({ heygen: "hk-1234", veo3: "vk-5678" });
    expect(createClients(loadEnv(base)).configured).toEqual([]);
  });

  it("derives the provider timeout from the ack wait and refuses one that is not shorter", () => {
    expect(loadEnv({ JOB_ACK_WAIT_MS: "3000" }).PROVIDER_HTTP_TIMEOUT_MS).toBe(2000);
    expect(loadEnv({ JOB_ACK_WAIT_MS: "60000" }).PROVIDER_HTTP_TIMEOUT_MS).toBe(20_000);
    expect(() => loadEnv({ JOB_ACK_WAIT_MS: "3000", PROVIDER_HTTP_TIMEOUT_MS: "3000" })).toThrow(
      "PROVIDER_HTTP_TIMEOUT_MS (3000) must be shorter than JOB_ACK_WAIT_MS (3000)",
    );
    expect(jobTopologyOptions(loadEnv({ ...base, TALKING_HEAD_CONCURRENCY: "2" })).jobConcurrency).toMatchObject({
      "talking-head": 2,
      "generate-voiceover": 2,
      "render-code": 1,
    });
    expect(jobTopologyOptions(loadEnv({ ...base, JOB_CONCURRENCY: "5", GENERATE_ANIMATION_CONCURRENCY: "1" })).jobConcurrency).toMatchObject({
      "talking-head": 5,
      "generate-animation": 1,
    });
  });
});

describe("prices", () => {
  it("estimates and charges in each provider's unit", () => {
    const p = createPricing(DEFAULT_PRICES);
    expect(spokenSeconds("one two three four five")).toBe(2);
    expect(p.heygen(30)).toBe(2.001);
    // HeyGen prices 4K higher; a frame is priced at the resolution HeyGen renders it at.
    expect(p.heygen(30, "4k")).toBe(2.499);
    expect(p.heygen(30, "720p")).toBe(2.001);
    // Photo avatars cost less, at every resolution.
    expect(p.heygen(30, "720p", "photo_avatar")).toBe(1.5);
    expect(p.heygen(30, "4k", "photo_avatar")).toBe(2.001);
    expect(p.elevenlabs(2500, "eleven_multilingual_v2")).toBe(0.25);
    expect(p.elevenlabs(2500, "eleven_flash_v2_5")).toBe(0.125);
    expect(p.elevenlabs(1000, "some_future_model")).toBe(0.1);
    expect(p.veo3(8, "veo-3.0-generate-001")).toBe(3.2);
    expect(p.veo3(8, "veo-3.0-fast-generate-001")).toBe(1.2);
    expect(p.runway(10, "gen4_turbo")).toBe(0.5);
    expect(p.runway(10, "gen4.5")).toBe(1.2);
    expect(DEFAULT_PRICES.readOn).toBe("2026-11-21");
  });

  it("estimates a node before it runs with the same rules the executor applies (shared from @vp/contracts)", () => {
    const script = Array.from({ length: 75 }, (_, i) => `w${i}`).join(" "); // 75 words = 30 s at 150 wpm
    expect(estimateAiCost("talking-head", "heygen", { script })).toBe(2.001);
    expect(estimateAiCost("talking-head", "heygen", { script, width: 3840, height: 2160 })).toBe(2.499);
    expect(estimateAiCost("talking-head", "heygen", { script, width: 1080, height: 1920 })).toBe(2.001);
    expect(estimateAiCost("talking-head", "heygen", { script, avatarType: "photo_avatar" })).toBe(1.5);
    expect(estimateAiCost("generate-voiceover", "elevenlabs", { script: "x".repeat(1200) })).toBe(0.12);
    expect(estimateAiCost("generate-animation", "veo3", { durationSeconds: 5 })).toBe(1.6); // Veo renders 4 s
    expect(estimateAiCost("generate-animation", "veo3", {})).toBe(3.2); // 8 s by default
    expect(estimateAiCost("generate-animation", "runway", { hasImage: true })).toBe(0.25); // gen4_turbo, 5 s
    expect(estimateAiCost("generate-animation", "runway", { durationSeconds: 30 })).toBe(1.2); // gen4.5, capped at 10 s
    expect(estimateAiCost("generate-animation", "local", {})).toBeLessThan(0.001);
  });

  it("takes sections of a price file and validates it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "vp-prices-"));
    try {
      const file = join(dir, "prices.json");
      await writeFile(file, JSON.stringify({ readOn: "2027-01-02", heygen: { usdPerVideoSecond: 0.05 } }));
      const table = loadPriceTable(file);
      expect(table).toMatchObject({ readOn: "2027-01-02", heygen: { usdPerVideoSecond: 0.05 }, runway: DEFAULT_PRICES.runway });
      await writeFile(file, JSON.stringify({ heygen: { usdPerVideoSecond: -1 } }));
      expect(() => loadPriceTable(file)).toThrow();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
