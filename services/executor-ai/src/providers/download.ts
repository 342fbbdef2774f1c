import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { createWriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import http from "node:http";
import https from "node:https";
import { BlockList, isIP, type LookupFunction } from "node:net";
import { pipeline } from "node:stream/promises";
import { Transform } from "node:stream";
import { ProviderTimeoutError, ProviderUnavailableError, UnsafeUrlError, redact, type PaidProvider } from "../errors";

/**
 * Addresses a provider-supplied URL may never reach: loopback, private, link-local (cloud metadata at
 * 169.254.169.254), CGNAT, multicast, reserved, and their IPv6 counterparts.
 */
const BLOCKED = new BlockList();
for (const [net, prefix] of [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["224.0.0.0", 4],
  ["240.0.0.0", 4],
] as const)
  BLOCKED.addSubnet(net, prefix, "ipv4");
for (const [net, prefix] of [
  ["::", 128],
  ["::1", 128],
  ["fc00::", 7],
  ["fe80::", 10],
  ["ff00::", 8],
  ["64:ff9b::", 96],
] as const) {
  BLOCKED.addSubnet(net, prefix, "ipv6");
}

export function isBlockedAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return BLOCKED.check(address, "ipv4");
  if (family === 6) {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    if (mapped) return BLOCKED.check(mapped[1]!, "ipv4");
    return BLOCKED.check(address, "ipv6");
  }
  return true;
}

export interface UrlPolicy {
  /**
   * Origins configured by the operator (the providers' base URLs, a test fake on 127.0.0.1): trusted as they
   * are, including http and loopback. Every other origin must be https on a public address.
   */
  trustedOrigins: readonly string[];
}

/** Checks a URL from a provider's answer before anything connects to it; returns it parsed. */
export function checkProviderUrl(raw: string, policy: UrlPolicy, what: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UnsafeUrlError(`${what} is not a URL`);
  }
  if (policy.trustedOrigins.includes(url.origin)) return url;
  if (url.protocol !== "https:") throw new UnsafeUrlError(`${what} must be https, got ${url.protocol.replace(":", "")}`);
  if (url.username || url.password) throw new UnsafeUrlError(`${what} must not carry credentials`);
  const host = url.hostname.replace(/^\[|\]$/g, "");
  if (isIP(host) && isBlockedAddress(host)) throw new UnsafeUrlError(`${what} points at a private or local address`);
  if (/^(localhost|.*\.localhost|.*\.local|.*\.internal)$/i.test(host)) throw new UnsafeUrlError(`${what} points at a local host name`);
  return url;
}

/**
 * DNS lookup that refuses blocked addresses at connect time, so a name that resolves (or re-resolves, DNS
 * rebinding) to a private address is never connected to.
 */
const guardedLookup: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, "", 0);
    const list = addresses as LookupAddress[];
    const bad = list.find((a) => isBlockedAddress(a.address));
    if (bad || list.length === 0) {
      const error = Object.assign(new Error(`refusing to connect to ${hostname}: it resolves to a private or local address`), {
        code: "EBLOCKEDADDRESS",
      });
      return callback(error, "", 0);
    }
    if ((options as { all?: boolean }).all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, list);
    callback(null, list[0]!.address, list[0]!.family);
  });
};

export interface DownloadOptions {
  provider: PaidProvider;
  url: string;
  /** Where the bytes go (a generated name in the job's work directory). */
  dest: string;
  policy: UrlPolicy;
  /** Extra headers for the first request (the API key, only for the provider's own origin); never sent on redirects. */
  headersFor?: (url: URL) => Record<string, string>;
  /** No bytes for this long fails the download (ProviderTimeoutError). */
  idleTimeoutMs: number;
  maxBytes: number;
  secrets: readonly string[];
  signal?: AbortSignal;
  maxRedirects?: number;
  what?: string;
}

/**
 * Streams a provider's result to a local file. Every hop (redirects included) passes checkProviderUrl; headers
 * from headersFor go with the first request only, so a redirect (a signed CDN URL, or anything else) never
 * receives the key. The response is never handed to ffmpeg or a browser: the caller probes the file and
 * stores it under a generated key.
 */
export async function downloadToFile(options: DownloadOptions): Promise<{ bytes: number; contentType?: string }> {
  const maxRedirects = options.maxRedirects ?? 5;
  const what = options.what ?? "result URL";
  let current = checkProviderUrl(options.url, options.policy, what);
  for (let hop = 0; ; hop++) {
    const response = await open(current, options, hop === 0 ? (options.headersFor?.(current) ?? {}) : {});
    const status = response.statusCode ?? 0;
    if (status >= 300 && status < 400 && response.headers.location) {
      response.resume();
      if (hop >= maxRedirects) throw new UnsafeUrlError(`${what}: more than ${maxRedirects} redirects`);
      current = checkProviderUrl(new URL(response.headers.location, current).toString(), options.policy, `${what} (redirect)`);
      continue;
    }
    if (status !== 200) {
      response.resume();
      // Retryable even for a 403/404: result URLs expire, and the next attempt polls the job again for a fresh one.
      throw new ProviderUnavailableError(options.provider, `download of the result answered ${status}`, "no");
    }
    let bytes = 0;
    const limit = new Transform({
      transform(chunk: Buffer, _enc, done) {
        bytes += chunk.length;
        if (bytes > options.maxBytes) return done(new UnsafeUrlError(`${what}: result is larger than ${options.maxBytes} bytes`));
        done(null, chunk);
      },
    });
    try {
      await pipeline(response, limit, createWriteStream(options.dest), { signal: options.signal });
    } catch (error) {
      await rm(options.dest, { force: true });
      if (error instanceof UnsafeUrlError) throw error;
      if ((error as { code?: string }).code === "ETIMEDOUTIDLE") throw new ProviderTimeoutError(options.provider, "the result download", options.idleTimeoutMs);
      if (options.signal?.aborted) throw error;
      throw new ProviderUnavailableError(options.provider, redact(`download cut off: ${(error as Error).message}`, options.secrets), "no", { cause: error });
    }
    return { bytes, contentType: response.headers["content-type"] };
  }
}

function open(url: URL, options: DownloadOptions, headers: Record<string, string>): Promise<http.IncomingMessage> {
  const trusted = options.policy.trustedOrigins.includes(url.origin);
  const client = url.protocol === "https:" ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.request(
      url,
      {
        method: "GET",
        headers: { accept: "*/*", ...headers },
        // Trusted (configured) origins may be loopback test fakes; everything else is checked at connect time.
        ...(trusted ? {} : { lookup: guardedLookup }),
        signal: options.signal,
      },
      (res) => {
        res.socket?.setTimeout(options.idleTimeoutMs, () => res.destroy(Object.assign(new Error("idle"), { code: "ETIMEDOUTIDLE" })));
        resolve(res);
      },
    );
    req.setTimeout(options.idleTimeoutMs, () => req.destroy(Object.assign(new Error("idle"), { code: "ETIMEDOUTIDLE" })));
    req.on("error", (error) => {
      const code = (error as { code?: string }).code;
      if (code === "ETIMEDOUTIDLE") return reject(new ProviderTimeoutError(options.provider, "the result download", options.idleTimeoutMs));
      if (code === "EBLOCKEDADDRESS") return reject(new UnsafeUrlError(error.message));
      if (options.signal?.aborted) return reject(error);
      reject(new ProviderUnavailableError(options.provider, redact(`download failed: ${code ?? error.message}`, options.secrets), "no", { cause: error }));
    });
    req.end();
  });
}
