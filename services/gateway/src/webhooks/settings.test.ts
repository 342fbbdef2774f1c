import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { decryptWebhookSecret, encryptWebhookSecret, generateWebhookSecret, parseWebhookKey, WebhookSecretUnreadableError } from "./secrets";
import { nextAfter } from "./sender";
import { DEFAULT_RETRY_SCHEDULE, parseRetrySchedule, webhookSettings } from "./settings";

const env = { WEBHOOK_ALLOW_CIDRS: "", WEBHOOK_RETRY_SCHEDULE: DEFAULT_RETRY_SCHEDULE, WEBHOOK_TIMEOUT_MS: 15_000, WEBHOOK_POLL_INTERVAL_MS: 1000 };

describe("webhook settings", () => {
  it("the default retry schedule is Standard Webhooks' (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h); a bad entry is named", () => {
    expect(parseRetrySchedule(DEFAULT_RETRY_SCHEDULE)).toEqual([5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000]);
    expect(parseRetrySchedule("200ms, 1.5s")).toEqual([200, 1500]);
    expect(parseRetrySchedule("")).toEqual([]);
    expect(() => parseRetrySchedule("5s,soon")).toThrow('WEBHOOK_RETRY_SCHEDULE: "soon" is not a duration like 500ms, 5s, 5m or 2h');
  });

  it("after an attempt: delivered on a 2xx, else the schedule's next wait, failed past its end", () => {
    expect(nextAfter(true, 1, [5])).toEqual({ status: "delivered" });
    expect(nextAfter(false, 1, [5, 7])).toEqual({ status: "pending", retryInMs: 5 });
    expect(nextAfter(false, 2, [5, 7])).toEqual({ status: "pending", retryInMs: 7 });
    expect(nextAfter(false, 3, [5, 7])).toEqual({ status: "failed" });
  });

  it("the key is 32 bytes as hex or base64; anything else stops the gateway with how to make one", () => {
    const key = randomBytes(32);
    expect(parseWebhookKey(key.toString("hex"))).toEqual(key);
    expect(parseWebhookKey(key.toString("base64"))).toEqual(key);
    expect(parseWebhookKey(key.toString("base64url"))).toEqual(key);
    for (const bad of ["short", randomBytes(16).toString("hex"), randomBytes(31).toString("base64")]) {
      expect(() => parseWebhookKey(bad), bad).toThrow(
        "WEBHOOK_SECRET_KEY must be 32 bytes written as 64 hex characters or base64 (make one with: openssl rand -base64 32)",
      );
    }
    expect(webhookSettings(env).key).toBeUndefined();
    expect(webhookSettings({ ...env, WEBHOOK_SECRET_KEY: key.toString("base64"), WEBHOOK_ALLOW_CIDRS: "127.0.0.1/32, 10.20.0.0/16" })).toMatchObject({
      key,
      allow: [{ text: "127.0.0.1/32" }, { text: "10.20.0.0/16" }],
    });
    expect(() => webhookSettings({ ...env, WEBHOOK_ALLOW_CIDRS: "10.0.0.0/33" })).toThrow(
      /^WEBHOOK_ALLOW_CIDRS: "10.0.0.0\/33": the prefix length must be 0-32/,
    );
  });

  it("secrets are whsec_ + 32 random bytes, encrypted per endpoint: another key or another endpoint's row cannot read one", () => {
    const secret = generateWebhookSecret();
    expect(Buffer.from(secret.slice("whsec_".length), "base64")).toHaveLength(32);
    expect(generateWebhookSecret()).not.toBe(secret);
    const key = randomBytes(32);
    const stored = encryptWebhookSecret(key, "wh_a", secret);
    expect(stored.includes(Buffer.from(secret))).toBe(false);
    expect(encryptWebhookSecret(key, "wh_a", secret).equals(stored)).toBe(false);
    expect(decryptWebhookSecret(key, "wh_a", stored)).toBe(secret);
    expect(() => decryptWebhookSecret(key, "wh_b", stored)).toThrow(WebhookSecretUnreadableError);
    expect(() => decryptWebhookSecret(randomBytes(32), "wh_a", stored)).toThrow(/cannot be decrypted with WEBHOOK_SECRET_KEY \(was the key changed\?\)/);
  });
});
