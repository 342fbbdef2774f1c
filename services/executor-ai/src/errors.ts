import { RetryAfterError } from "@vp/bus";
import { WorkInputError } from "@vp/runtime";

export { RetryAfterError, WorkInputError };

export type PaidProvider = "heygen" | "elevenlabs" | "veo3" | "runway";

export const PROVIDER_LABEL: Record<PaidProvider, string> = {
  heygen: "HeyGen",
  elevenlabs: "ElevenLabs",
  veo3: "Veo 3",
  runway: "Runway",
};

/**
 * The provider answered 4xx (other than 429): a bad avatar or voice id, a content-policy refusal, a rejected
 * key. The same request can never succeed, so the node fails at once with the provider's own message. Nothing
 * was created, so nothing was paid.
 */
export class ProviderRejectedError extends WorkInputError {
  readonly provider: PaidProvider;
  readonly status: number;
  readonly code: string | undefined;
  constructor(provider: PaidProvider, status: number, message: string, code?: string) {
    super(`${PROVIDER_LABEL[provider]} rejected the request (${status}${code ? ` ${code}` : ""}): ${message}`);
    this.name = "ProviderRejectedError";
    this.provider = provider;
    this.status = status;
    this.code = code;
  }
}

/**
 * A 429 that no wait will cure within the node's patience: a quota the provider says is spent for the day, or rate
 * limits that kept answering for longer than PROVIDER_RATE_LIMIT_MAX_WAIT_MS. The node fails with the reason instead
 * of holding a concurrency slot for hours. Nothing was created.
 */
export class ProviderQuotaError extends WorkInputError {
  readonly provider: PaidProvider;
  constructor(provider: PaidProvider, message: string) {
    super(`${PROVIDER_LABEL[provider]} quota exhausted: ${message}`);
    this.name = "ProviderQuotaError";
    this.provider = provider;
  }
}

/**
 * 5xx after the in-process retries, or a network error. Retryable: the job goes back to JetStream with a
 * backoff. `created` says what is known about a create request: "no" when the provider answered (5xx) or the
 * connection was refused, "unknown" when the request may have reached it (reset, timeout).
 */
export class ProviderUnavailableError extends Error {
  readonly provider: PaidProvider;
  readonly created: "no" | "unknown";
  constructor(provider: PaidProvider, message: string, created: "no" | "unknown", options?: { cause?: unknown }) {
    super(`${PROVIDER_LABEL[provider]} unavailable: ${message}`, options);
    this.name = "ProviderUnavailableError";
    this.provider = provider;
    this.created = created;
  }
}

/** The provider did not answer within the request timeout (shorter than the job's ack wait). Retryable. */
export class ProviderTimeoutError extends ProviderUnavailableError {
  constructor(provider: PaidProvider, what: string, timeoutMs: number) {
    super(provider, `no answer to ${what} within ${timeoutMs} ms`, "unknown");
    this.name = "ProviderTimeoutError";
  }
}

/** The provider's job itself failed after it was accepted (render error, filtered output). Not retried. */
export class ProviderJobFailedError extends WorkInputError {
  constructor(provider: PaidProvider, jobId: string, reason: string) {
    super(`${PROVIDER_LABEL[provider]} job ${jobId} failed: ${reason}`);
    this.name = "ProviderJobFailedError";
  }
}

/** A URL in a provider's answer that we refuse to fetch (not https, a private address, too many redirects). */
export class UnsafeUrlError extends WorkInputError {
  constructor(message: string) {
    super(message);
    this.name = "UnsafeUrlError";
  }
}

/** Whether an error of a create request proves that the provider created (and charged) nothing. */
export function createdNothing(error: unknown): boolean {
  if (error instanceof RetryAfterError || error instanceof ProviderRejectedError || error instanceof ProviderQuotaError) return true;
  if (error instanceof ProviderUnavailableError) return error.created === "no";
  return false;
}

/** Replaces every configured secret in `text` (keys echoed in a provider's error body, URLs with keys). */
export function redact(text: string, secrets: readonly (string | undefined)[]): string {
  let out = text;
  for (const secret of secrets) {
    if (secret && secret.length >= 4) out = out.split(secret).join("[redacted]");
  }
  return out;
}
