import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addressRefusal, fetchUrlToFile, MAX_REDIRECTS, parseCidr, parseCidrList, UrlFetchError, UrlRefusedError, type Resolver } from "./url-fetch";

/** A real HTTP server on `host`, recording every request it gets. */
async function serve(host: string, handler: (req: IncomingMessage, res: ServerResponse) => void) {
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as { port: number };
  return { requests, port, origin: `http://${host}:${port}`, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

let dir: string;
let files = 0;
const dest = () => join(dir, `download-${++files}.bin`);
const CLIP = Buffer.alloc(64 * 1024, 7);
/** The only internal range these tests allow: the fake media server's address. */
const allow = [parseCidr("127.0.0.2/32")];
const options = { allow, maxBytes: 1024 * 1024, timeoutMs: 10_000 };

let media: Awaited<ReturnType<typeof serve>>;
/** Stands for everything on loopback an attacker would want to reach: it must never see a request. */
let trap: Awaited<ReturnType<typeof serve>>;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "vp-url-fetch-"));
  trap = await serve("127.0.0.1", (_req, res) => res.end("secret"));
  media = await serve("127.0.0.2", (req, res) => {
    const url = new URL(req.url!, "http://x");
    const to = url.searchParams.get("to");
    if (url.pathname === "/clip.mp4") return res.writeHead(200, { "content-type": "video/mp4", "content-length": CLIP.length }).end(CLIP);
    if (url.pathname === "/redirect") return res.writeHead(302, { location: to! }).end();
    if (url.pathname.startsWith("/hops/")) {
      const n = Number(url.pathname.slice(6));
      return res.writeHead(n > 0 ? 307 : 200, n > 0 ? { location: `/hops/${n - 1}` } : { "content-type": "video/mp4" }).end(n > 0 ? "" : "ok");
    }
    if (url.pathname === "/missing") return res.writeHead(404).end("no");
    if (url.pathname === "/declared-huge") return res.writeHead(200, { "content-length": String(10 * 1024 * 1024) }).end();
    if (url.pathname === "/endless") {
      // Chunked, no length: only the counted bytes can stop it.
      res.writeHead(200, { "content-type": "video/mp4" });
      const pump = () => {
        while (res.write(Buffer.alloc(64 * 1024))) if (res.destroyed) return;
      };
      res.on("drain", pump);
      res.on("error", () => undefined);
      pump();
      return;
    }
    if (url.pathname === "/hang") return; // never answers
    res.writeHead(500).end();
  });
});

afterAll(async () => {
  await media?.close();
  await trap?.close();
  await rm(dir, { recursive: true, force: true });
});

describe("addressRefusal", () => {
  it.each([
    ["127.0.0.1", "a loopback address"],
    ["127.255.255.254", "a loopback address"],
    ["0.0.0.0", "an unspecified ('this network') address"],
    ["10.1.2.3", "a private address"],
    ["172.16.0.1", "a private address"],
    ["172.31.255.255", "a private address"],
    ["192.168.1.1", "a private address"],
    ["100.64.0.1", "a carrier-grade NAT (shared) address"],
    ["169.254.169.254", "a link-local address (where cloud metadata services answer)"],
    ["224.0.0.1", "a multicast address"],
    ["239.255.255.250", "a multicast address"],
    ["255.255.255.255", "the broadcast address"],
    ["240.0.0.1", "a reserved address"],
    ["192.0.2.10", "a documentation address"],
    ["::1", "a loopback address"],
    ["::", "the unspecified address"],
    ["fe80::1", "a link-local address"],
    ["fe80::1%lo", "a link-local address"],
    ["fd00::1", "a private (unique local) address"],
    ["fc00::1", "a private (unique local) address"],
    ["ff02::1", "a multicast address"],
    ["::ffff:127.0.0.1", "an IPv4-mapped form of 127.0.0.1, a loopback address"],
    ["::ffff:7f00:1", "an IPv4-mapped form of 127.0.0.1, a loopback address"],
    ["[::ffff:a9fe:a9fe]", "an IPv4-mapped form of 169.254.169.254, a link-local address (where cloud metadata services answer)"],
    ["::127.0.0.1", "an IPv4-compatible form of 127.0.0.1, a loopback address"],
    ["64:ff9b::10.0.0.1", "a NAT64 form of 10.0.0.1, a private address"],
    ["2002:7f00:1::", "a 6to4 form of 127.0.0.1, a loopback address"],
    ["localhost", "not an IP address"],
  ])("refuses %s: %s", (ip, reason) => {
    expect(addressRefusal(ip)).toBe(reason);
  });

  it.each(["93.184.216.34", "8.8.8.8", "172.32.0.1", "100.128.0.1", "2606:4700:4700::1111", "::ffff:93.184.216.34", "2002:5db8:d822::"])(
    "lets public %s through",
    (ip) => {
      expect(addressRefusal(ip)).toBeNull();
    },
  );

  it("lets an allowed range through, and nothing next to it", () => {
    expect(addressRefusal("127.0.0.2", allow)).toBeNull();
    expect(addressRefusal("::ffff:127.0.0.2", allow)).toBeNull();
    expect(addressRefusal("127.0.0.1", allow)).toBe("a loopback address");
    expect(addressRefusal("127.0.0.3", allow)).toBe("a loopback address");
    expect(addressRefusal("fd12::5", [parseCidr("fd12::/16")])).toBeNull();
  });

  it("parses allow lists and names a bad entry", () => {
    expect(parseCidrList("")).toEqual([]);
    expect(parseCidrList(" 10.0.0.0/8, 127.0.0.2 fd00::/8").map((c) => [c.text, c.prefix])).toEqual([
      ["10.0.0.0/8", 8],
      ["127.0.0.2", 32],
      ["fd00::/8", 8],
    ]);
    expect(() => parseCidrList("10.0.0.0/33")).toThrow(/prefix length must be 0-32/);
    expect(() => parseCidrList("example.com/8")).toThrow(/not an IP address or CIDR range/);
    expect(() => parseCidrList("10.0.0.0/8/1")).toThrow(/not an IP address or CIDR range/);
  });
});

describe("fetchUrlToFile", () => {
  it("downloads from an allowed server, following redirects", async () => {
    const path = dest();
    const result = await fetchUrlToFile(`${media.origin}/hops/3`, path, options);
    expect(result).toMatchObject({ size: 2, contentType: "video/mp4", redirects: 3, finalUrl: `${media.origin}/hops/0` });
    const clip = dest();
    expect(await fetchUrlToFile(`${media.origin}/clip.mp4`, clip, options)).toMatchObject({ size: CLIP.length, contentType: "video/mp4", redirects: 0 });
    expect((await readFile(clip)).equals(CLIP)).toBe(true);
  });

  // Every way of naming the trap on loopback; none of them may reach it.
  const port = () => trap.port;
  it.each([
    ["loopback", () => `http://127.0.0.1:${port()}/secret`, /: 127\.0\.0\.1 is a loopback address$/],
    [
      "a name resolving to 127.0.0.1",
      () => `http://localhost:${port()}/secret`,
      /^refusing to fetch http:\/\/localhost:\d+\/secret: localhost resolves to 127\.0\.0\.1, a loopback address$/,
    ],
    ["a decimal IP", () => `http://2130706433:${port()}/secret`, /: 127\.0\.0\.1 is a loopback address$/],
    ["a hex IP", () => `http://0x7f000001:${port()}/secret`, /: 127\.0\.0\.1 is a loopback address$/],
    ["an octal IP", () => `http://0177.0.0.1:${port()}/secret`, /: 127\.0\.0\.1 is a loopback address$/],
    ["a short IP", () => `http://127.1:${port()}/secret`, /: 127\.0\.0\.1 is a loopback address$/],
    ["IPv6 loopback", () => `http://[::1]:${port()}/secret`, /: ::1 is a loopback address$/],
    ["IPv4-mapped IPv6", () => `http://[::ffff:127.0.0.1]:${port()}/secret`, /: ::ffff:7f00:1 is an IPv4-mapped form of 127\.0\.0\.1, a loopback address$/],
    ["the unspecified address", () => `http://0.0.0.0:${port()}/secret`, /: 0\.0\.0\.0 is an unspecified/],
    ["the metadata address", () => "http://169.254.169.254/latest/meta-data/", /: 169\.254\.169\.254 is a link-local address/],
    ["IPv6 link-local", () => "http://[fe80::1]/x", /: fe80::1 is a link-local address$/],
    ["a private address", () => "http://10.0.0.1/x", /: 10\.0\.0\.1 is a private address$/],
    ["CGNAT", () => "http://100.64.0.1/x", /carrier-grade NAT/],
    ["multicast", () => "http://224.0.0.1/x", /multicast/],
    ["broadcast", () => "http://255.255.255.255/x", /the broadcast address/],
    [
      "a redirect into loopback",
      () => `${media.origin}/redirect?to=${encodeURIComponent(`http://127.0.0.1:${port()}/secret`)}`,
      /\(redirect 1 to http:\/\/127\.0\.0\.1:\d+\/secret\): 127\.0\.0\.1 is a loopback address$/,
    ],
    [
      "a redirect to localhost",
      () => `${media.origin}/redirect?to=${encodeURIComponent(`http://localhost:${port()}/secret`)}`,
      /localhost resolves to 127\.0\.0\.1, a loopback address$/,
    ],
    [
      "a redirect to a decimal IP",
      () => `${media.origin}/redirect?to=${encodeURIComponent(`http://2130706433:${port()}/secret`)}`,
      /127\.0\.0\.1 is a loopback address$/,
    ],
    [
      "a redirect to file:",
      () => `${media.origin}/redirect?to=${encodeURIComponent("file:///etc/passwd")}`,
      /only http and https URLs are fetched, not file:$/,
    ],
    [
      "a redirect with userinfo",
      () => `${media.origin}/redirect?to=${encodeURIComponent(`http://u:p@127.0.0.2:${media.port}/clip.mp4`)}`,
      /user name or password/,
    ],
  ])("refuses %s", async (_what, url, reason) => {
    const before = trap.requests.length;
    const path = dest();
    const error = await fetchUrlToFile(url(), path, options).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UrlRefusedError);
    expect((error as Error).message).toMatch(/^refusing to fetch /);
    expect((error as Error).message).toMatch(reason);
    expect(trap.requests.length).toBe(before);
    expect(await readdir(dir)).not.toContain(path.slice(dir.length + 1));
  });

  it("checks the address it connects to, as resolved at connect time (no rebinding between check and connect)", async () => {
    const answers: Record<string, string[]> = {
      "media.test": ["127.0.0.2"],
      "rebind.test": ["93.184.216.34", "127.0.0.1"],
      "mapped.test": ["::ffff:127.0.0.1"],
    };
    const calls: string[] = [];
    const resolver: Resolver = async (hostname) => {
      calls.push(hostname);
      return (answers[hostname] ?? []).map((address) => ({ address, family: address.includes(":") ? 6 : 4 }));
    };
    // The allowed name connects to the address the resolver gave (there is no server under that name).
    expect(await fetchUrlToFile(`http://media.test:${media.port}/clip.mp4`, dest(), { ...options, resolver })).toMatchObject({ size: CLIP.length });
    const before = trap.requests.length;
    await expect(fetchUrlToFile(`http://rebind.test:${trap.port}/secret`, dest(), { ...options, resolver })).rejects.toThrow(
      /^refusing to fetch http:\/\/rebind\.test:\d+\/secret: rebind\.test resolves to 127\.0\.0\.1, a loopback address$/,
    );
    await expect(fetchUrlToFile(`http://mapped.test:${trap.port}/secret`, dest(), { ...options, resolver })).rejects.toThrow(
      /IPv4-mapped form of 127\.0\.0\.1/,
    );
    await expect(fetchUrlToFile(`http://nowhere.test/x`, dest(), { ...options, resolver })).rejects.toThrow(UrlFetchError);
    expect(trap.requests.length).toBe(before);
    expect(calls).toEqual(["media.test", "rebind.test", "mapped.test", "nowhere.test"]);
  });

  it(`stops after ${MAX_REDIRECTS} redirects`, async () => {
    expect(await fetchUrlToFile(`${media.origin}/hops/${MAX_REDIRECTS}`, dest(), options)).toMatchObject({ redirects: MAX_REDIRECTS });
    await expect(fetchUrlToFile(`${media.origin}/hops/${MAX_REDIRECTS + 1}`, dest(), options)).rejects.toThrow(
      new UrlFetchError(`fetching ${media.origin}/hops/${MAX_REDIRECTS + 1} took more than ${MAX_REDIRECTS} redirects`),
    );
  });

  it("fails on an answer that is not 2xx, with the status", async () => {
    await expect(fetchUrlToFile(`${media.origin}/missing?sig=secret`, dest(), options)).rejects.toThrow(
      new UrlFetchError(`${media.origin}/missing answered 404 Not Found`),
    );
  });

  it("enforces the size limit, declared or counted", async () => {
    await expect(fetchUrlToFile(`${media.origin}/declared-huge`, dest(), options)).rejects.toThrow(/is 10485760 bytes; the limit is 1048576 bytes$/);
    await expect(fetchUrlToFile(`${media.origin}/endless`, dest(), options)).rejects.toThrow(/is larger than the limit of 1048576 bytes$/);
  });

  it("gives up after the timeout, and on the caller's abort", async () => {
    await expect(fetchUrlToFile(`${media.origin}/hang`, dest(), { ...options, timeoutMs: 300 })).rejects.toThrow(/took longer than 300 ms$/);
    const controller = new AbortController();
    const pending = fetchUrlToFile(`${media.origin}/hang`, dest(), { ...options, signal: controller.signal });
    controller.abort();
    await expect(pending).rejects.toThrow();
  });
});
