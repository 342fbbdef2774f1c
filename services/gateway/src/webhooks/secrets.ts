import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";

/**
 * Endpoint signing secrets: generated here (`whsec_` + base64 of 32 random bytes, the Standard Webhooks form), shown
 * once, stored encrypted with AES-256-GCM under WEBHOOK_SECRET_KEY. The gateway signs every delivery with the secret,
 * so it must be recoverable: a hash would not do. The endpoint's id is the additional data, so a stored secret cannot
 * be moved to another endpoint's row.
 */

export const SECRET_PREFIX = "whsec_";
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

/** WEBHOOK_SECRET_KEY is missing or malformed; the message says how to make one. */
export class WebhookKeyError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "WebhookKeyError";
  }
}

/** A stored secret cannot be decrypted with this key (another key encrypted it, or the bytes were changed). */
export class WebhookSecretUnreadableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "WebhookSecretUnreadableError";
  }
}

/** The 32-byte key from its setting: 64 hex characters, or base64 (standard or url-safe) of 32 bytes. */
export function parseWebhookKey(text: string): Buffer {
  const value = text.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(value) ? Buffer.from(value, "hex") : /^[A-Za-z0-9+/_-]{43}=?$/.test(value) ? Buffer.from(value, "base64") : null;
  if (key?.length !== 32) {
    throw new WebhookKeyError("WEBHOOK_SECRET_KEY must be 32 bytes written as 64 hex characters or base64 (make one with: openssl rand -base64 32)");
  }
  return key;
}

/** A new signing secret, `whsec_<base64 of 32 random bytes>`. */
export const generateWebhookSecret = () => `${SECRET_PREFIX}${randomBytes(32).toString("base64")}`;

/** nonce (12 bytes) || tag (16 bytes) || ciphertext. */
export function encryptWebhookSecret(key: Buffer, endpointId: string, secret: string): Buffer {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv("aes-256-gcm", key, nonce);
  cipher.setAAD(Buffer.from(endpointId, "utf8"));
  const ciphertext = Buffer.concat([cipher.update(secret, "utf8"), cipher.final()]);
  return Buffer.concat([nonce, cipher.getAuthTag(), ciphertext]);
}

export function decryptWebhookSecret(key: Buffer, endpointId: string, stored: Uint8Array): string {
  const bytes = Buffer.from(stored);
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, bytes.subarray(0, NONCE_BYTES));
    decipher.setAAD(Buffer.from(endpointId, "utf8"));
    decipher.setAuthTag(bytes.subarray(NONCE_BYTES, NONCE_BYTES + TAG_BYTES));
    return Buffer.concat([decipher.update(bytes.subarray(NONCE_BYTES + TAG_BYTES)), decipher.final()]).toString("utf8");
  } catch (error) {
    throw new WebhookSecretUnreadableError(
      `the signing secret of webhook endpoint ${endpointId} cannot be decrypted with WEBHOOK_SECRET_KEY (was the key changed?); delete the endpoint and create it again`,
      { cause: error },
    );
  }
}
