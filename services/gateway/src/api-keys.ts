import { Hono } from "hono";
import { z } from "zod";
import {
  API_KEY_ID_PATTERN,
  apiKeySecretMatches,
  ForbiddenError,
  generateApiKey,
  isRole,
  parseApiKey,
  ROLES,
  UnauthenticatedError,
  type Principal,
} from "@vp/auth";
import { Id, Title } from "@vp/contracts";
import { createApiKey, getApiKeyForCheck, listApiKeys, missingPipelineIds, revokeApiKey, touchApiKey, type ApiKey, type Queryable } from "@vp/db";
import { logText, type Logger } from "@vp/telemetry";
import type { GatewayDeps } from "./deps";
import { HttpError } from "./errors";
import { jsonBody, noBody } from "./validation";

/** Most pipelines one key may be limited to. */
export const MAX_API_KEY_PIPELINES = 100;
/** last_used_at is written at most this often per key. */
export const API_KEY_TOUCH_INTERVAL_MS = 60_000;

export interface ApiKeyVerifier {
  /** Who a presented `vpk_...` key is, or UnauthenticatedError with the reason (malformed, unknown, revoked). */
  verify(key: string): Promise<Principal>;
}

export interface ApiKeyVerifierOptions {
  /** Postgres as vp_editor: the only role that reads the keys table. */
  db: Queryable;
  logger: Logger;
  touchIntervalMs?: number;
}

/**
 * Checks API keys against their stored hashes. Every check reads the row (a revocation holds at once, on every
 * gateway); a key's last use is written at most once per interval, not on every request.
 */
export function createApiKeyVerifier({ db, logger, touchIntervalMs = API_KEY_TOUCH_INTERVAL_MS }: ApiKeyVerifierOptions): ApiKeyVerifier {
  // Per key: when this process last wrote (or found written) its last use.
  const touched = new Map<string, number>();

  async function touch(key: ApiKey) {
    const now = Date.now();
    const seen = Math.max(touched.get(key.id) ?? 0, key.last_used_at ? Date.parse(key.last_used_at) : 0);
    if (now - seen < touchIntervalMs) return;
    if (touched.size > 10_000) for (const [id, at] of touched) if (now - at >= touchIntervalMs) touched.delete(id);
    touched.set(key.id, now);
    try {
      await touchApiKey(db, key.id, touchIntervalMs / 1000);
    } catch (error) {
      // The request goes on: a missed last-use time is retried on the key's next request.
      touched.delete(key.id);
      logger.warn({ err: error, apiKeyId: key.id }, "could not record an API key's last use");
    }
  }

  return {
    async verify(presented) {
      const parsed = parseApiKey(presented);
      if (!parsed) {
        throw new UnauthenticatedError(
          "The API key is malformed: it is vpk_<16 hex characters>_<43 characters>, exactly as it was shown when it was created (copy it whole)",
        );
      }
      const key = await getApiKeyForCheck(db, parsed.id);
      if (!key || !apiKeySecretMatches(parsed.secret, key.secretHash)) {
        throw new UnauthenticatedError("Unknown API key: no key has this id and secret (check it was copied whole, or ask an operator for a new one)");
      }
      if (key.revoked_at) throw new UnauthenticatedError(`The API key ${key.id} was revoked at ${key.revoked_at}; ask an operator for a new one`);
      await touch(key);
      return {
        subject: `api-key:${key.id}`,
        roles: new Set(key.roles.filter(isRole)),
        ...(key.pipelines ? { pipelines: new Set(key.pipelines) } : {}),
      };
    },
  };
}

export const CreateApiKeyBody = z.strictObject({
  /** What the key is for ("CI deploy"), shown in the list. */
  name: Title,
  roles: z
    .array(z.enum(ROLES))
    .min(1)
    .max(ROLES.length * 2),
  /** The only pipelines the key may use; absent: every pipeline. */
  pipelines: z.array(Id).min(1).max(MAX_API_KEY_PIPELINES).optional(),
});

const apiKeyNotFound = () => new HttpError(404, "API key not found");

/**
 * /v1/video_production/api-keys (operator; refused to keys limited to pipelines): POST creates a key and answers
 * it once, GET lists keys (never a secret or hash), DELETE /:id revokes one (again: still 204).
 */
export function apiKeyRoutes(deps: Pick<GatewayDeps, "reader" | "editor" | "logger">) {
  const app = new Hono();

  app.post("/", async (c) => {
    const principal = c.get("principal");
    const body = await jsonBody(c, CreateApiKeyBody);
    // Any role implies viewer; the stored roles are the ones the key has.
    const roles = ROLES.filter((role) => role === "viewer" || body.roles.includes(role));
    // No one hands out more than they hold: an operator without the editor role cannot make an editor key.
    const lacking = roles.filter((role) => !principal.roles.has(role));
    if (lacking.length) {
      throw new ForbiddenError(`A key cannot have a role its creator lacks: you do not have ${lacking.join(", ")}`, lacking[0]);
    }
    const pipelines = body.pipelines ? [...new Set(body.pipelines)] : null;
    if (pipelines) {
      const missing = await missingPipelineIds(deps.reader, pipelines);
      if (missing.length) throw new HttpError(422, `pipelines: no pipeline has the id ${missing.map((id) => JSON.stringify(id)).join(", ")}`);
    }
    const made = generateApiKey();
    const apiKey = await createApiKey(deps.editor, {
      id: made.id,
      name: body.name,
      roles,
      pipelineIds: pipelines,
      secretHash: made.secretHash,
      createdBy: principal.subject,
    });
    deps.logger.info(
      { apiKeyId: apiKey.id, name: logText(apiKey.name), roles, pipelines: pipelines?.length ?? "all", createdBy: logText(principal.subject) },
      "API key created",
    );
    return c.json({ api_key: apiKey, key: made.key }, 201);
  });

  app.get("/", async (c) => c.json({ api_keys: await listApiKeys(deps.editor) }));

  app.delete("/:id", async (c) => {
    const id = c.req.param("id");
    await noBody(c);
    if (!API_KEY_ID_PATTERN.test(id)) throw apiKeyNotFound();
    const revoked = await revokeApiKey(deps.editor, id);
    if (!revoked) throw apiKeyNotFound();
    deps.logger.info({ apiKeyId: id, revokedAt: revoked.revoked_at, by: logText(c.get("principal").subject) }, "API key revoked");
    return c.body(null, 204);
  });

  return app;
}
