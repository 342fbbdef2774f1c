import { type Cidr, parseCidrList } from "@vp/url-guard";
import { parseWebhookKey } from "./secrets";

/** The retry schedule Standard Webhooks suggests: after the first attempt, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h. */
export const DEFAULT_RETRY_SCHEDULE = "5s,5m,30m,2h,5h,10h,10h";

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "5s,5m,30m,2h" -> waits in ms before each retry; an empty text: no retries. Throws naming a bad entry. */
export function parseRetrySchedule(text: string): number[] {
  return text
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .map((entry) => {
      const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(entry);
      if (!m) throw new Error(`WEBHOOK_RETRY_SCHEDULE: "${entry}" is not a duration like 500ms, 5s, 5m or 2h`);
      return Math.round(Number(m[1]) * UNITS[m[2]!]!);
    });
}

export interface WebhookSettings {
  /** Undefined: WEBHOOK_SECRET_KEY is not set, webhooks are off. */
  key?: Buffer;
  allow: Cidr[];
  retrySchedule: number[];
  timeoutMs: number;
  pollIntervalMs: number;
}

/** The WEBHOOK_* settings, checked at start-up: a malformed key, range or schedule stops the gateway with the reason. */
export function webhookSettings(env: {
  WEBHOOK_SECRET_KEY?: string;
  WEBHOOK_ALLOW_CIDRS: string;
  WEBHOOK_RETRY_SCHEDULE: string;
  WEBHOOK_TIMEOUT_MS: number;
  WEBHOOK_POLL_INTERVAL_MS: number;
}): WebhookSettings {
  let allow: Cidr[];
  try {
    allow = parseCidrList(env.WEBHOOK_ALLOW_CIDRS);
  } catch (error) {
    throw new Error(`WEBHOOK_ALLOW_CIDRS: ${(error as Error).message}`);
  }
  return {
    key: env.WEBHOOK_SECRET_KEY ? parseWebhookKey(env.WEBHOOK_SECRET_KEY) : undefined,
    allow,
    retrySchedule: parseRetrySchedule(env.WEBHOOK_RETRY_SCHEDULE),
    timeoutMs: env.WEBHOOK_TIMEOUT_MS,
    pollIntervalMs: env.WEBHOOK_POLL_INTERVAL_MS,
  };
}
