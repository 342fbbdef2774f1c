/**
 * Requests to URLs a user chose (URL asset downloads, webhook deliveries), safe against server-side request
 * forgery: the URL is the user's, the network is ours. Every address a request would connect to is checked, at
 * connect time, against the ranges a user must never reach through our services (loopback, private, link-local
 * with the cloud metadata address, CGNAT, multicast, broadcast, reserved, and their IPv4-mapped / NAT64 / 6to4
 * IPv6 forms):
 *   - names are resolved by our own `lookup` passed to the http/https request, so the address checked is the
 *     address connected to (DNS rebinding cannot swap it between a check and the connect);
 *   - IP literals (which Node connects to without a lookup) are checked before the request; WHATWG URL has
 *     already normalised decimal, hex, octal and short spellings (`http://2130706433/` is 127.0.0.1);
 *   - downloads (fetchUrlToFile) follow redirects by hand, at most MAX_REDIRECTS, each hop checked like the
 *     first, under a byte limit (Content-Length and counted) and an overall timeout; posts (post.ts) follow none.
 * An operator allowlist (ASSET_URL_ALLOW_CIDRS, WEBHOOK_ALLOW_CIDRS) admits specific ranges, e.g. an internal
 * media server.
 */
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from "node:dns";
import { createWriteStream } from "node:fs";
import http, { type IncomingMessage } from "node:http";
import https from "node:https";
import { isIP, type LookupFunction } from "node:net";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";

export const MAX_REDIRECTS = 5;

/** The address (or the name) is one our services must not reach. No retry can fix it. */
export class UrlRefusedError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "UrlRefusedError";
  }
}

/** The server's answer cannot become the asset: non-2xx, too many redirects, too large, too slow. No retry fixes it. */
export class UrlFetchError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "UrlFetchError";
  }
}

// ---------------------------------------------------------------------------------------------------
// Addresses

/** A CIDR range as bytes (4 for IPv4, 16 for IPv6). */
export interface Cidr {
  bytes: Uint8Array;
  prefix: number;
  text: string;
}

function ipv4Bytes(ip: string): Uint8Array | null {
  const parts = ip.split(".");
  if (parts.length !== 4) return null;
  const bytes = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    if (!/^\d{1,3}$/.test(parts[i]!)) return null;
    const n = Number(parts[i]);
    if (n > 255) return null;
    bytes[i] = n;
  }
  return bytes;
}

function ipv6Bytes(ip: string): Uint8Array | null {
  let text = ip;
  const zone = text.indexOf("%");
  if (zone >= 0) text = text.slice(0, zone);
  // A trailing dotted quad (::ffff:127.0.0.1) is the last 32 bits.
  let tail: Uint8Array | null = null;
  const lastColon = text.lastIndexOf(":");
  if (text.slice(lastColon + 1).includes(".")) {
    tail = ipv4Bytes(text.slice(lastColon + 1));
    if (!tail) return null;
    text = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const group = (s: string) => (s === "" ? [] : s.split(":"));
  const head = group(halves[0]!);
  const rest = halves.length === 2 ? group(halves[1]!) : [];
  const missing = 8 - head.length - rest.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill("0"), ...rest];
  const bytes = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(groups[i]!)) return null;
    const n = parseInt(groups[i]!, 16);
    bytes[i * 2] = n >> 8;
    bytes[i * 2 + 1] = n & 0xff;
  }
  if (tail) bytes.set(tail, 12);
  return bytes;
}

/** The bytes of an IP address (brackets allowed around IPv6), or null when it is not one. */
export function ipBytes(ip: string): Uint8Array | null {
  const bare = ip.startsWith("[") && ip.endsWith("]") ? ip.slice(1, -1) : ip;
  const family = isIP(bare.split("%")[0]!);
  if (family === 4) return ipv4Bytes(bare);
  if (family === 6) return ipv6Bytes(bare);
  return null;
}

const formatV4 = (b: Uint8Array) => Array.from(b).join(".");

/** Parses "10.0.0.0/8" or a bare address (a /32 or /128). Throws on anything else. */
export function parseCidr(text: string): Cidr {
  const [addr = "", bits, extra] = text.trim().split("/");
  const bytes = ipBytes(addr);
  if (!bytes || extra !== undefined) throw new Error(`"${text}" is not an IP address or CIDR range`);
  const max = bytes.length * 8;
  const prefix = bits === undefined ? max : /^\d{1,3}$/.test(bits) ? Number(bits) : NaN;
  if (!(prefix >= 0 && prefix <= max)) throw new Error(`"${text}": the prefix length must be 0-${max}`);
  return { bytes, prefix, text: text.trim() };
}

/** A comma- or space-separated list of CIDR ranges (empty: none). Throws naming the first bad entry. */
export function parseCidrList(text: string | undefined): Cidr[] {
  return (text ?? "")
    .split(/[\s,]+/)
    .filter(Boolean)
    .map(parseCidr);
}

function inRange(bytes: Uint8Array, range: Cidr): boolean {
  if (bytes.length !== range.bytes.length) return false;
  let bits = range.prefix;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((bytes[i]! & mask) !== (range.bytes[i]! & mask)) return false;
  }
  return true;
}

type Special = { range: Cidr; label: string } | { range: Cidr; embedsV4: (b: Uint8Array) => Uint8Array; label: string };

const r = (text: string) => parseCidr(text);
/** First match wins: the more specific ranges come first. */
const SPECIAL_V4: Array<{ range: Cidr; label: string }> = [
  { range: r("0.0.0.0/8"), label: "an unspecified ('this network') address" },
  { range: r("10.0.0.0/8"), label: "a private address" },
  { range: r("100.64.0.0/10"), label: "a carrier-grade NAT (shared) address" },
  { range: r("127.0.0.0/8"), label: "a loopback address" },
  { range: r("169.254.0.0/16"), label: "a link-local address (where cloud metadata services answer)" },
  { range: r("172.16.0.0/12"), label: "a private address" },
  { range: r("192.0.0.0/24"), label: "an IETF protocol assignment address" },
  { range: r("192.0.2.0/24"), label: "a documentation address" },
  { range: r("192.88.99.0/24"), label: "a 6to4 relay address" },
  { range: r("192.168.0.0/16"), label: "a private address" },
  { range: r("198.18.0.0/15"), label: "a benchmarking address" },
  { range: r("198.51.100.0/24"), label: "a documentation address" },
  { range: r("203.0.113.0/24"), label: "a documentation address" },
  { range: r("224.0.0.0/4"), label: "a multicast address" },
  { range: r("255.255.255.255/32"), label: "the broadcast address" },
  { range: r("240.0.0.0/4"), label: "a reserved address" },
];
const last4 = (b: Uint8Array) => b.slice(12, 16);
const SPECIAL_V6: Special[] = [
  { range: r("::/128"), label: "the unspecified address" },
  { range: r("::1/128"), label: "a loopback address" },
  { range: r("::ffff:0:0/96"), embedsV4: last4, label: "an IPv4-mapped form" },
  { range: r("::/96"), embedsV4: last4, label: "an IPv4-compatible form" },
  { range: r("64:ff9b::/96"), embedsV4: last4, label: "a NAT64 form" },
  { range: r("64:ff9b:1::/48"), label: "a local-use NAT64 address" },
  { range: r("100::/64"), label: "a discard-only address" },
  { range: r("2001::/32"), label: "a Teredo tunnel address" },
  { range: r("2001:db8::/32"), label: "a documentation address" },
  { range: r("2002::/16"), embedsV4: (b) => b.slice(2, 6), label: "a 6to4 form" },
  { range: r("fc00::/7"), label: "a private (unique local) address" },
  { range: r("fe80::/10"), label: "a link-local address" },
  { range: r("fec0::/10"), label: "a site-local address" },
  { range: r("ff00::/8"), label: "a multicast address" },
];

/**
 * Why connecting to `ip` is refused ("a loopback address", "an IPv4-mapped form of 127.0.0.1, a loopback
 * address"), or null for a public unicast address or one inside `allow`. An address that is not an IP at all
 * is refused too.
 */
export function addressRefusal(ip: string, allow: readonly Cidr[] = []): string | null {
  const bytes = ipBytes(ip);
  if (!bytes) return "not an IP address";
  if (allow.some((range) => inRange(bytes, range))) return null;
  if (bytes.length === 4) return SPECIAL_V4.find((s) => inRange(bytes, s.range))?.label ?? null;
  for (const special of SPECIAL_V6) {
    if (!inRange(bytes, special.range)) continue;
    if (!("embedsV4" in special)) return special.label;
    const v4 = special.embedsV4(bytes);
    const inner = addressRefusal(formatV4(v4), allow);
    return inner === null ? null : `${special.label} of ${formatV4(v4)}, ${inner}`;
  }
  return null;
}

// ---------------------------------------------------------------------------------------------------
// Resolving and connecting

/** Resolves a name to every address (dns.lookup's shape with all: true); replaceable in tests. */
export type Resolver = (hostname: string, options: LookupOptions) => Promise<LookupAddress[]>;

export const systemResolver: Resolver = (hostname, options) =>
  new Promise((resolve, reject) => dnsLookup(hostname, { ...options, all: true }, (error, addresses) => (error ? reject(error) : resolve(addresses))));

/**
 * The `lookup` of every outgoing request: resolves the name, refuses the connection if ANY address is
 * refused (a name that also points inside is not trusted with its outside addresses), and hands Node the
 * checked addresses to connect to.
 */
export function guardedLookup(allow: readonly Cidr[], resolver: Resolver = systemResolver): LookupFunction {
  return ((hostname: string, options: LookupOptions, callback: (...args: unknown[]) => void) => {
    resolver(hostname, options).then(
      (addresses) => {
        if (!addresses.length) return callback(new UrlFetchError(`${hostname} has no address`));
        for (const { address } of addresses) {
          const refusal = addressRefusal(address, allow);
          if (refusal) return callback(new UrlRefusedError(`${hostname} resolves to ${address}, ${refusal}`));
        }
        if (options.all) return callback(null, addresses);
        return callback(null, addresses[0]!.address, addresses[0]!.family);
      },
      (error: NodeJS.ErrnoException) => {
        if (error.code === "ENOTFOUND" || error.code === "ENODATA")
          return callback(new UrlFetchError(`${hostname} does not resolve (${error.code})`, { cause: error }));
        callback(error);
      },
    );
  }) as LookupFunction;
}

// ---------------------------------------------------------------------------------------------------
// Downloading

export interface UrlFetchOptions {
  /** Ranges admitted although they are internal (ASSET_URL_ALLOW_CIDRS). */
  allow: readonly Cidr[];
  /** Largest body accepted, in bytes. */
  maxBytes: number;
  /** Upper bound of the whole download, redirects included. */
  timeoutMs: number;
  signal?: AbortSignal;
  resolver?: Resolver;
  /** Called as bytes arrive (received, expected total when the server sent one). */
  onProgress?(received: number, total: number | undefined): void;
}

export interface UrlFetchResult {
  size: number;
  /** The final answer's Content-Type (the server's word: only ever compared with an allow-list). */
  contentType?: string;
  /** The URL the body came from (after redirects). */
  finalUrl: string;
  redirects: number;
}

/** The URL without its query and fragment, for messages and logs (a query may carry a signature). */
export const displayUrl = (url: URL) => `${url.origin}${url.pathname}`;

/**
 * Downloads `input` to the local file `dest` (created, never overwritten). Throws UrlRefusedError for an
 * address outside the policy, UrlFetchError for an answer that cannot be the asset; other errors (a reset
 * connection, a refused port) are transient and left to the caller's retry policy.
 */
export async function fetchUrlToFile(input: string, dest: string, options: UrlFetchOptions): Promise<UrlFetchResult> {
  const timeout = AbortSignal.timeout(options.timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  const lookup = guardedLookup(options.allow, options.resolver);
  const first = new URL(input);
  let url = first;
  const refuse = (hop: number, reason: string) =>
    new UrlRefusedError(`refusing to fetch ${displayUrl(first)}${hop ? ` (redirect ${hop} to ${displayUrl(url)})` : ""}: ${reason}`);

  for (let hop = 0; ; hop++) {
    if (url.protocol !== "http:" && url.protocol !== "https:") throw refuse(hop, `only http and https URLs are fetched, not ${url.protocol}`);
    if (url.username || url.password) throw refuse(hop, "URLs with a user name or password are not fetched");
    const host = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
    if (isIP(host)) {
      const refusal = addressRefusal(host, options.allow);
      if (refusal) throw refuse(hop, `${host} is ${refusal}`);
    }
    let response: IncomingMessage;
    try {
      response = await request(url, lookup, signal);
    } catch (error) {
      if (error instanceof UrlRefusedError) throw refuse(hop, error.message);
      if (timeout.aborted) throw new UrlFetchError(`fetching ${displayUrl(first)} took longer than ${options.timeoutMs} ms`, { cause: error });
      if (error instanceof UrlFetchError) throw new UrlFetchError(`cannot fetch ${displayUrl(first)}: ${error.message}`, { cause: error });
      throw error;
    }
    const status = response.statusCode ?? 0;
    if ([301, 302, 303, 307, 308].includes(status)) {
      response.resume();
      const location = response.headers.location;
      if (!location) throw new UrlFetchError(`${displayUrl(url)} answered ${status} without a Location`);
      if (hop + 1 > MAX_REDIRECTS) throw new UrlFetchError(`fetching ${displayUrl(first)} took more than ${MAX_REDIRECTS} redirects`);
      try {
        url = new URL(location, url);
      } catch {
        throw new UrlFetchError(`${displayUrl(url)} redirected to an invalid URL`);
      }
      continue;
    }
    if (status < 200 || status > 299) {
      response.resume();
      throw new UrlFetchError(`${displayUrl(url)} answered ${status}${response.statusMessage ? ` ${response.statusMessage}` : ""}`);
    }
    const declared = Number(response.headers["content-length"] ?? NaN);
    if (Number.isFinite(declared) && declared > options.maxBytes) {
      response.destroy();
      throw new UrlFetchError(`${displayUrl(url)} is ${declared} bytes; the limit is ${options.maxBytes} bytes`);
    }
    let size = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        size += chunk.length;
        if (size > options.maxBytes) return done(new UrlFetchError(`${displayUrl(url)} is larger than the limit of ${options.maxBytes} bytes`));
        options.onProgress?.(size, Number.isFinite(declared) ? declared : undefined);
        done(null, chunk);
      },
    });
    try {
      await pipeline(response, counter, createWriteStream(dest, { flags: "wx" }), { signal });
    } catch (error) {
      if (error instanceof UrlFetchError) throw error;
      if (timeout.aborted) throw new UrlFetchError(`fetching ${displayUrl(first)} took longer than ${options.timeoutMs} ms`, { cause: error });
      throw error;
    }
    const contentType = typeof response.headers["content-type"] === "string" ? response.headers["content-type"] : undefined;
    return { size, contentType, finalUrl: url.href, redirects: hop };
  }
}

function request(url: URL, lookup: LookupFunction, signal: AbortSignal): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const client = url.protocol === "https:" ? https : http;
    const req = client.request(url, {
      method: "GET",
      // A fresh connection per request, made through our lookup (no pooled socket to another address).
      agent: false,
      lookup,
      signal,
      headers: { "user-agent": "video-pipelines-executor (asset download)", accept: "*/*", "accept-encoding": "identity" },
    });
    req.once("response", resolve);
    req.once("error", reject);
    req.end();
  });
}
