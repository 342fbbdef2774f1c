import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * API keys: long-lived credentials for servers and CI, `vpk_<id>_<secret>`. The id (16 hex characters) names the
 * stored row and is not secret; the secret is 32 random bytes (base64url), stored only as its SHA-256. A KDF adds
 * nothing for a secret of 256 random bits, and a hash keeps the check cheap enough for every request.
 */
export const API_KEY_PREFIX = "vpk_";
/** An API key's id: what the routes, the subject (`api-key:<id>`) and the logs show. */
export const API_KEY_ID_PATTERN = /^[0-9a-f]{16}$/;
const API_KEY_PATTERN = /^vpk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

/** Whether a bearer credential is meant as an API key (a JWT never starts with the prefix). */
export const isApiKey = (credential: string) => credential.startsWith(API_KEY_PREFIX);

/** The SHA-256 of an API key's secret: the only form of it that is stored. */
export const hashApiKeySecret = (secret: string): Buffer => createHash("sha256").update(secret, "utf8").digest();

export interface NewApiKey {
  id: string;
  /** The whole key to hand to its user, once: `vpk_<id>_<secret>`. */
  key: string;
  /** What to store. */
  secretHash: Buffer;
}

/** A new API key with a random id and secret. */
export function generateApiKey(): NewApiKey {
  const id = randomBytes(8).toString("hex");
  const secret = randomBytes(32).toString("base64url");
  return { id, key: `${API_KEY_PREFIX}${id}_${secret}`, secretHash: hashApiKeySecret(secret) };
}

/** The id and secret of a well-formed API key, or null. */
export function parseApiKey(key: string): { id: string; secret: string } | null {
  const match = API_KEY_PATTERN.exec(key);
  return match ? { id: match[1]!, secret: match[2]! } : null;
}

/** Whether `secret` hashes to the stored hash, in time independent of where they differ. */
export function apiKeySecretMatches(secret: string, storedHash: Uint8Array): boolean {
  const hash = hashApiKeySecret(secret);
  return storedHash.length === hash.length && timingSafeEqual(hash, storedHash);
}
