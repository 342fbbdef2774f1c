import { SpanKind, withSpan, type Logger } from "@vp/telemetry";
import {
  PROVIDER_LABEL,
  ProviderQuotaError,
  ProviderRejectedError,
  ProviderTimeoutError,
  ProviderUnavailableError,
  RetryAfterError,
  redact,
  type PaidProvider,
} from "../errors";

export interface ProviderHttpOptions {
  provider: PaidProvider;
  /** Configured base URL (production default or a test fake); every request path is resolved against it. */
  baseUrl: string;
  /** Authentication headers (the API key). Never logged. */
  authHeaders: Record<string, string>;
  /** Values redacted from every error message (the API key). */
  secrets: string[];
  /** Per request; shorter than the job consumer's ack wait. */
  timeoutMs: number;
  /** In-process retries of a 5xx answer or a refused connection (never of a timeout). */
  retries: number;
  retryBaseMs?: number;
  /** Delay for a 429 that carries no Retry-After. */
  defaultRetryAfterMs: number;
  /** Extracts the provider's own error message (and code) from an error body. */
  describeError(body: unknown): { message?: string; code?: string };
  /**
   * Reads a 429's body: the delay it states (Google's RetryInfo), or that waiting cannot help (a per-day quota).
   * Retry-After, when sent, wins over a stated delay.
   */
  describeRateLimit?(body: unknown): { delayMs?: number; exhausted?: string };
  logger?: Logger;
}

export interface ProviderRequest {
  method: "GET" | "POST" | "DELETE";
  /** Path below the base URL, already encoded. */
  path: string;
  query?: Record<string, string | undefined>;
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Name of the call in messages ("create video"). */
  what: string;
}

export interface ProviderResponse {
  status: number;
  headers: Headers;
  /** Parsed JSON (or undefined for an empty body); for binary calls see `bytes`. */
  json: unknown;
  bytes?: Buffer;
}

const MAX_ERROR_BODY = 64 * 1024;

/** Seconds or an HTTP date, as RFC 9110 allows; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

function networkCode(error: unknown): string | undefined {
  const cause = (error as { cause?: { code?: string } })?.cause;
  return cause?.code ?? (error as { code?: string })?.code;
}

/** Connection errors after which the request certainly never reached the provider. */
const NOT_SENT = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH"]);

/**
 * One provider's HTTP API: JSON (or binary) requests with a timeout, and the error policy of every client:
 *
 * | answer                       | result                                                                     |
 * |------------------------------|----------------------------------------------------------------------------|
 * | 2xx                          | the response                                                               |
 * | 429                          | RetryAfterError(Retry-After): nak with that delay, not counted as a failure |
 * | 5xx, connection refused      | retried here with backoff, then ProviderUnavailableError (nak with backoff) |
 * | timeout, connection reset    | ProviderTimeoutError / ProviderUnavailableError("unknown"), not retried here |
 * | other 4xx                    | ProviderRejectedError with the provider's message: the node fails at once   |
 *
 * The API key travels only in headers to the configured base URL and is redacted from every message.
 */
export function createProviderHttp(options: ProviderHttpOptions) {
  const { provider, retries } = options;
  const retryBaseMs = options.retryBaseMs ?? 300;
  const base = new URL(options.baseUrl.endsWith("/") ? options.baseUrl : `${options.baseUrl}/`);
  const label = PROVIDER_LABEL[provider];

  function url(path: string, query?: Record<string, string | undefined>): URL {
    const u = new URL(path.replace(/^\//, ""), base);
    if (u.origin !== base.origin) throw new Error(`${label}: request path ${path} leaves the configured base URL`);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) u.searchParams.set(k, v);
    return u;
  }

  async function once(req: ProviderRequest, binary: boolean): Promise<ProviderResponse> {
    const target = url(req.path, req.query);
    const started = Date.now();
    const { response, bytes } = await send(options, target, req, binary);
    options.logger?.debug({ provider, method: req.method, path: target.pathname, status: response.status, ms: Date.now() - started }, "provider call");
    if (!response.ok) throw answerError(options, req, response, bytes);
    if (binary) return { status: response.status, headers: response.headers, json: undefined, bytes };
    const text = bytes.toString("utf8");
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      throw new ProviderUnavailableError(provider, `${req.what}: answer is not JSON`, "unknown");
    }
    return { status: response.status, headers: response.headers, json };
  }

  async function call(req: ProviderRequest, binary = false): Promise<ProviderResponse> {
    for (let attempt = 0; ; attempt++) {
      try {
        // One client span per provider call (a child of the job's span), without query strings or headers.
        return await withSpan(
          `${provider} ${req.what}`,
          {
            kind: SpanKind.CLIENT,
            attributes: { "http.request.method": req.method, "url.path": req.path, "vp.provider": provider, "vp.http.attempt": attempt },
          },
          () => once(req, binary),
        );
      } catch (error) {
        const retryable = error instanceof ProviderUnavailableError && !(error instanceof ProviderTimeoutError) && error.created === "no";
        if (!retryable || attempt >= retries || req.signal?.aborted) throw error;
        const delay = Math.round(retryBaseMs * 2 ** attempt * (0.5 + Math.random() / 2));
        options.logger?.warn({ provider, what: req.what, err: (error as Error).message, delay }, "provider call failed; retrying");
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  return {
    provider,
    base,
    /** JSON in, JSON out. */
    json: (req: ProviderRequest) => call(req, false),
    /** JSON in, bytes out (ElevenLabs audio). */
    binary: (req: ProviderRequest) => call(req, true),
    /** Origin of the configured base URL (its downloads may carry the key; loopback allowed for test fakes). */
    origin: base.origin,
  };
}

/**
 * Sends one request and reads the whole answer, with an idle timeout: no answer, or no further bytes of it, within
 * timeoutMs. A long audio download that keeps streaming is fine; a provider that stalls is not.
 */
async function send(options: ProviderHttpOptions, target: URL, req: ProviderRequest, binary: boolean): Promise<{ response: Response; bytes: Buffer }> {
  const { provider, timeoutMs } = options;
  const clean = (text: string) => redact(text, options.secrets);
  const stall = new AbortController();
  let timer = setTimeout(() => stall.abort(), timeoutMs);
  const touch = () => {
    clearTimeout(timer);
    timer = setTimeout(() => stall.abort(), timeoutMs);
  };
  const signal = req.signal ? AbortSignal.any([req.signal, stall.signal]) : stall.signal;
  try {
    let response: Response;
    try {
      response = await fetch(target, {
        method: req.method,
        headers: {
          accept: binary ? "*/*" : "application/json",
          ...(req.body !== undefined ? { "content-type": "application/json" } : {}),
          ...options.authHeaders,
          ...req.headers,
        },
        body: req.body !== undefined ? JSON.stringify(req.body) : undefined,
        signal,
        redirect: "error",
      });
    } catch (error) {
      if (req.signal?.aborted) throw error;
      if (stall.signal.aborted) throw new ProviderTimeoutError(provider, req.what, timeoutMs);
      const code = networkCode(error);
      throw new ProviderUnavailableError(provider, clean(`${req.what}: ${code ?? (error as Error).message}`), code && NOT_SENT.has(code) ? "no" : "unknown", {
        cause: error,
      });
    }
    try {
      const chunks: Buffer[] = [];
      if (response.body) {
        for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
          touch();
          chunks.push(Buffer.from(chunk));
        }
      }
      return { response, bytes: Buffer.concat(chunks) };
    } catch (error) {
      if (req.signal?.aborted) throw error;
      if (stall.signal.aborted) throw new ProviderTimeoutError(provider, `${req.what} (reading the answer)`, timeoutMs);
      throw new ProviderUnavailableError(provider, clean(`${req.what}: answer cut off`), "unknown", { cause: error });
    }
  } finally {
    clearTimeout(timer);
  }
}

/** The error a non-2xx answer is, by the policy of createProviderHttp, with the provider's own message (redacted). */
function answerError(options: ProviderHttpOptions, req: ProviderRequest, response: Response, bytes: Buffer): Error {
  const { provider } = options;
  const text = bytes.subarray(0, MAX_ERROR_BODY).toString("utf8");
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // plain-text error body
  }
  const described = options.describeError(body);
  const message = redact((described.message ?? (text.trim().slice(0, 300) || response.statusText || "no message")).replace(/\s+/g, " "), options.secrets);
  if (response.status === 429) {
    const limit = options.describeRateLimit?.(body) ?? {};
    if (limit.exhausted) return new ProviderQuotaError(provider, `${limit.exhausted} (${req.what}: ${message})`);
    const delayMs = parseRetryAfter(response.headers.get("retry-after")) ?? limit.delayMs ?? options.defaultRetryAfterMs;
    return new RetryAfterError(delayMs, `${PROVIDER_LABEL[provider]} rate limit on ${req.what}: ${message} (retry after ${Math.ceil(delayMs / 1000)} s)`);
  }
  if (response.status >= 500) return new ProviderUnavailableError(provider, `${req.what} answered ${response.status}: ${message}`, "no");
  return new ProviderRejectedError(provider, response.status, message, described.code);
}

export type ProviderHttp = ReturnType<typeof createProviderHttp>;
