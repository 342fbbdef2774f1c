import type { Logger } from "@vp/telemetry";
import type { Env } from "./env";
import type { PaidProvider } from "./errors";
import type { UrlPolicy } from "./providers/download";
import { createElevenlabsClient } from "./providers/elevenlabs";
import { createHeygenClient } from "./providers/heygen";
import { createRunwayClient } from "./providers/runway";
import { createVeoClient } from "./providers/veo";
import type { AiClients } from "./handlers/common";

/** One client per provider whose key is configured; base URLs from the environment (test fakes in tests). */
export function createClients(env: Env, logger?: Logger) {
  const common = {
    timeoutMs: env.PROVIDER_HTTP_TIMEOUT_MS,
    retries: env.PROVIDER_HTTP_RETRIES,
    defaultRetryAfterMs: env.PROVIDER_DEFAULT_RETRY_AFTER_MS,
    logger,
  };
  const veoKey = env.GEMINI_API_KEY ?? env.VEO_API_KEY;
  const clients: AiClients = {
    heygen: env.HEYGEN_API_KEY ? createHeygenClient({ ...common, baseUrl: env.HEYGEN_BASE_URL, apiKey: env.HEYGEN_API_KEY }) : undefined,
    elevenlabs: env.ELEVENLABS_API_KEY ? createElevenlabsClient({ ...common, baseUrl: env.ELEVENLABS_BASE_URL, apiKey: env.ELEVENLABS_API_KEY }) : undefined,
    veo3: veoKey ? createVeoClient({ ...common, baseUrl: env.VEO_BASE_URL, apiKey: veoKey }) : undefined,
    runway: env.RUNWAY_API_KEY ? createRunwayClient({ ...common, baseUrl: env.RUNWAY_BASE_URL, apiKey: env.RUNWAY_API_KEY }) : undefined,
  };
  const secrets: Partial<Record<PaidProvider, string>> = {
    heygen: env.HEYGEN_API_KEY,
    elevenlabs: env.ELEVENLABS_API_KEY,
    veo3: veoKey,
    runway: env.RUNWAY_API_KEY,
  };
  // The configured base URLs are the operator's choice (production APIs, or a fake on 127.0.0.1 in tests):
  // their origins are trusted for result downloads; any other origin must be public https.
  const urlPolicy: UrlPolicy = {
    trustedOrigins: [env.HEYGEN_BASE_URL, env.ELEVENLABS_BASE_URL, env.VEO_BASE_URL, env.RUNWAY_BASE_URL].map((u) => new URL(u).origin),
  };
  const configured = (Object.keys(clients) as PaidProvider[]).filter((p) => clients[p]);
  return { clients, secrets, urlPolicy, configured };
}
