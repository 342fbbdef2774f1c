import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { apiKeySecretMatches, generateApiKey, isApiKey, parseApiKey } from "./api-keys";

describe("API keys", () => {
  it("are vpk_<id>_<secret>, random each time, stored as the SHA-256 of the secret", () => {
    const a = generateApiKey();
    const b = generateApiKey();
    expect(a.key).toMatch(/^vpk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    expect(a.id).not.toBe(b.id);
    const parsed = parseApiKey(a.key)!;
    expect(parsed.id).toBe(a.id);
    expect(a.secretHash.equals(createHash("sha256").update(parsed.secret).digest())).toBe(true);
    expect(a.key).not.toContain(a.secretHash.toString("hex"));
  });

  it("match only their own hash", () => {
    const a = generateApiKey();
    const b = generateApiKey();
    expect(apiKeySecretMatches(parseApiKey(a.key)!.secret, a.secretHash)).toBe(true);
    expect(apiKeySecretMatches(parseApiKey(a.key)!.secret, b.secretHash)).toBe(false);
    expect(apiKeySecretMatches(parseApiKey(a.key)!.secret, a.secretHash.subarray(0, 16))).toBe(false);
  });

  it("tell themselves apart from JWTs and refuse malformed keys", () => {
    expect(isApiKey(generateApiKey().key)).toBe(true);
    expect(isApiKey("eyJhbGciOiJIUzI1NiJ9.e30.x")).toBe(false);
    for (const bad of [
      "vpk_",
      "vpk_abc_def",
      `vpk_${"g".repeat(16)}_${"a".repeat(43)}`,
      `vpk_${"a".repeat(16)}_${"a".repeat(42)}`,
      `vpk_${"a".repeat(16)}_${"a".repeat(43)}x`,
    ]) {
      expect(parseApiKey(bad), bad).toBeNull();
    }
  });
});
