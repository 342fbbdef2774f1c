/**
 * Sending to URLs a user chose (webhook deliveries) through the same guard as downloads: the URL's form and an IP
 * literal are checked before anything is sent, and every address a name resolves to is checked by the request's own
 * `lookup` at connect time, so a name re-pointed at an internal address after it was accepted (DNS rebinding) is
 * refused then. Redirects are not followed: a 3xx is an answer like any other.
 */
import http, { type IncomingMessage } from "node:http";
import https from "node:https";
import { isIP } from "node:net";
import { addressRefusal, type Cidr, displayUrl, guardedLookup, type Resolver, systemResolver, UrlFetchError, UrlRefusedError } from "./url-fetch";

/** The URL parsed, when its form may be sent to (http or https, no user name or password); else UrlRefusedError. */
function parseTarget(input: string): URL {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw new UrlRefusedError("not a valid absolute URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new UrlRefusedError(`only http and https URLs are allowed, not ${url.protocol}`);
  if (url.username || url.password) throw new UrlRefusedError("URLs with a user name or password are not allowed");
  return url;
}

const bareHost = (url: URL) => (url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname);

/**
 * Checks a URL before it is stored (a webhook endpoint): its form, then every address its host is or resolves to.
 * Throws UrlRefusedError naming the reason (an internal address, a name resolving to one), or UrlFetchError when the
 * name does not resolve. Passing says nothing about later: the request checks again when it connects.
 */
export async function checkUrlTarget(input: string, options: { allow: readonly Cidr[]; resolver?: Resolver }): Promise<URL> {
  const url = parseTarget(input);
  const host = bareHost(url);
  if (isIP(host)) {
    const refusal = addressRefusal(host, options.allow);
    if (refusal) throw new UrlRefusedError(`${host} is ${refusal}`);
    return url;
  }
  let addresses: Array<{ address: string }>;
  try {
    addresses = await (options.resolver ?? systemResolver)(host, { all: true });
  } catch (error) {
    throw new UrlFetchError(`${host} does not resolve (${(error as NodeJS.ErrnoException).code ?? "lookup failed"})`, { cause: error });
  }
  if (!addresses.length) throw new UrlFetchError(`${host} has no address`);
  for (const { address } of addresses) {
    const refusal = addressRefusal(address, options.allow);
    if (refusal) throw new UrlRefusedError(`${host} resolves to ${address}, ${refusal}`);
  }
  return url;
}

export interface PostOptions {
  /** Ranges admitted although they are internal (e.g. WEBHOOK_ALLOW_CIDRS). */
  allow: readonly Cidr[];
  /** Upper bound of the whole exchange: connect, send, answer and the body kept. */
  timeoutMs: number;
  headers: Record<string, string>;
  /** Most bytes of the answer's body kept; the rest is not read. */
  maxResponseBytes: number;
  signal?: AbortSignal;
  resolver?: Resolver;
}

export interface PostResult {
  status: number;
  /** The answer's body as text, at most maxResponseBytes of it. */
  body: string;
  truncated: boolean;
}

/**
 * POSTs `body` to `input` and returns the answer's status and the start of its body, whatever the status. Throws
 * UrlRefusedError for a URL or address outside the policy, UrlFetchError when no answer came within the timeout;
 * other errors (a refused or reset connection) are the network's.
 */
export async function postToUrl(input: string, body: string | Uint8Array, options: PostOptions): Promise<PostResult> {
  const url = parseTarget(input);
  const host = bareHost(url);
  if (isIP(host)) {
    const refusal = addressRefusal(host, options.allow);
    if (refusal) throw new UrlRefusedError(`refusing to send to ${displayUrl(url)}: ${host} is ${refusal}`);
  }
  const timeout = AbortSignal.timeout(options.timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  try {
    const response = await send(url, body, options.headers, guardedLookup(options.allow, options.resolver), signal);
    const { text, truncated } = await readCapped(response, options.maxResponseBytes);
    return { status: response.statusCode ?? 0, body: text, truncated };
  } catch (error) {
    if (error instanceof UrlRefusedError) throw new UrlRefusedError(`refusing to send to ${displayUrl(url)}: ${error.message}`, { cause: error });
    if (timeout.aborted) throw new UrlFetchError(`no answer from ${displayUrl(url)} within ${options.timeoutMs} ms`, { cause: error });
    if (error instanceof UrlFetchError) throw new UrlFetchError(`cannot send to ${displayUrl(url)}: ${error.message}`, { cause: error });
    throw error;
  }
}

function send(url: URL, body: string | Uint8Array, headers: Record<string, string>, lookup: ReturnType<typeof guardedLookup>, signal: AbortSignal) {
  return new Promise<IncomingMessage>((resolve, reject) => {
    const client = url.protocol === "https:" ? https : http;
    const payload = typeof body === "string" ? Buffer.from(body) : body;
    const req = client.request(url, {
      method: "POST",
      // A fresh connection per request, made through our lookup (no pooled socket to another address).
      agent: false,
      lookup,
      signal,
      headers: { "accept-encoding": "identity", ...headers, "content-length": String(payload.byteLength) },
    });
    req.once("response", resolve);
    req.once("error", reject);
    req.end(payload);
  });
}

/** Reads at most `max` bytes of the body, then stops reading (the connection is not reused). */
function readCapped(response: IncomingMessage, max: number): Promise<{ text: string; truncated: boolean }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (truncated: boolean) => resolve({ text: Buffer.concat(chunks).toString("utf8"), truncated });
    response.on("data", (chunk: Buffer) => {
      const room = max - size;
      chunks.push(room < chunk.length ? chunk.subarray(0, room) : chunk);
      size += Math.min(room, chunk.length);
      if (size >= max && chunk.length > room) {
        response.destroy();
        finish(true);
      }
    });
    response.once("end", () => finish(false));
    response.once("error", reject);
  });
}
