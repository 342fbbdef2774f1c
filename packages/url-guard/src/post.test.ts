import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkUrlTarget, postToUrl } from "./post";
import { parseCidr, UrlFetchError, UrlRefusedError, type Resolver } from "./url-fetch";

/** A real HTTP server on `host`, recording every request with its headers and body. */
async function serve(host: string, handler: (req: IncomingMessage, res: ServerResponse, body: string) => void) {
  const requests: Array<{ method: string; url: string; headers: IncomingMessage["headers"]; body: string }> = [];
  const server: Server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8").on("data", (chunk: string) => (body += chunk));
    req.on("end", () => {
      requests.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      handler(req, res, body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as { port: number };
  return { requests, port, origin: `http://${host}:${port}`, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/** The only internal range these tests allow: the receiver's address. */
const allow = [parseCidr("127.0.0.2/32")];
const options = { allow, timeoutMs: 5000, maxResponseBytes: 64, headers: { "content-type": "application/json", "webhook-id": "msg_1" } };
/** A name resolving where the test says, as DNS rebinding would make it. */
const resolveTo =
  (address: string): Resolver =>
  async () => [{ address, family: address.includes(":") ? 6 : 4 }];

let receiver: Awaited<ReturnType<typeof serve>>;
/** Stands for everything on loopback an attacker would want to reach: it must never see a request. */
let trap: Awaited<ReturnType<typeof serve>>;

beforeAll(async () => {
  trap = await serve("127.0.0.1", (_req, res) => res.end("secret"));
  receiver = await serve("127.0.0.2", (req, res) => {
    if (req.url === "/big") return res.end("x".repeat(10_000));
    if (req.url === "/moved") return res.writeHead(302, { location: `${trap.origin}/` }).end();
    if (req.url === "/hang") return;
    res.writeHead(req.url === "/fail" ? 500 : 200).end(`got ${req.url}`);
  });
});
afterAll(async () => {
  await receiver?.close();
  await trap?.close();
});

describe("postToUrl", () => {
  it("sends the body and headers and answers the status and the start of the body, whatever the status", async () => {
    expect(await postToUrl(`${receiver.origin}/ok`, '{"a":1}', options)).toEqual({ status: 200, body: "got /ok", truncated: false });
    expect(receiver.requests.at(-1)).toMatchObject({
      method: "POST",
      url: "/ok",
      body: '{"a":1}',
      headers: { "content-type": "application/json", "webhook-id": "msg_1", "content-length": "7" },
    });
    expect(await postToUrl(`${receiver.origin}/fail`, "{}", options)).toEqual({ status: 500, body: "got /fail", truncated: false });
    expect(await postToUrl(`${receiver.origin}/big`, "{}", options)).toEqual({ status: 200, body: "x".repeat(64), truncated: true });
  });

  it("follows no redirect: a 3xx is the answer, and the trap is never reached", async () => {
    expect(await postToUrl(`${receiver.origin}/moved`, "{}", options)).toMatchObject({ status: 302 });
    expect(trap.requests).toEqual([]);
  });

  it("refuses internal addresses outside the allow list, also a name re-pointed at one when it connects", async () => {
    for (const url of [`${trap.origin}/`, `http://[::1]:${trap.port}/`, `http://2130706433:${trap.port}/`, `http://169.254.169.254/latest/meta-data/`]) {
      await expect(postToUrl(url, "{}", options), url).rejects.toThrow(UrlRefusedError);
    }
    await expect(postToUrl(`http://localhost:${trap.port}/`, "{}", options)).rejects.toThrow(/localhost resolves to .*a loopback address/);
    // The name passed the check when the endpoint was made; now it resolves inside (DNS rebinding).
    await expect(postToUrl(`http://hooks.example.com:${trap.port}/`, "{}", { ...options, resolver: resolveTo("127.0.0.1") })).rejects.toThrow(
      /refusing to send to http:\/\/hooks.example.com:\d+\/: hooks.example.com resolves to 127.0.0.1, a loopback address/,
    );
    await expect(postToUrl("ftp://example.com/x", "{}", options)).rejects.toThrow(/only http and https/);
    expect(trap.requests).toEqual([]);
    // The allowed range is reached by name too.
    expect(await postToUrl(`http://receiver.test:${receiver.port}/named`, "{}", { ...options, resolver: resolveTo("127.0.0.2") })).toMatchObject({
      status: 200,
    });
  });

  it("gives up when no answer comes within the timeout", async () => {
    await expect(postToUrl(`${receiver.origin}/hang`, "{}", { ...options, timeoutMs: 300 })).rejects.toThrow(
      new UrlFetchError(`no answer from ${receiver.origin}/hang within 300 ms`),
    );
  });
});

describe("checkUrlTarget", () => {
  it.each([
    ["http://127.0.0.1:8080/hook", /127.0.0.1 is a loopback address/],
    ["http://10.1.2.3/hook", /10.1.2.3 is a private address/],
    ["http://169.254.169.254/latest/meta-data/", /169.254.169.254 is a link-local address/],
    ["http://[::1]/hook", /::1 is a loopback address/],
    ["http://[::ffff:10.0.0.1]/hook", /an IPv4-mapped form of 10.0.0.1, a private address/],
    ["http://localhost:3000/hook", /localhost resolves to .*a loopback address/],
    ["ftp://example.com/hook", /only http and https URLs are allowed, not ftp:/],
    ["https://user:pw@example.com/hook", /URLs with a user name or password are not allowed/],
    ["not a url", /not a valid absolute URL/],
  ])("refuses %s", async (url, reason) => {
    const error = await checkUrlTarget(url, { allow: [] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UrlRefusedError);
    expect((error as Error).message).toMatch(reason);
  });

  it("refuses a name resolving inside, and one that does not resolve; accepts public addresses and allowed ranges", async () => {
    await expect(checkUrlTarget("https://hooks.example.com/x", { allow: [], resolver: resolveTo("10.0.0.7") })).rejects.toThrow(
      /hooks.example.com resolves to 10.0.0.7, a private address/,
    );
    await expect(checkUrlTarget("https://nowhere.invalid/x", { allow: [] })).rejects.toThrow(UrlFetchError);
    expect((await checkUrlTarget("https://hooks.example.com/x?t=1", { allow: [], resolver: resolveTo("93.184.216.34") })).href).toBe(
      "https://hooks.example.com/x?t=1",
    );
    expect((await checkUrlTarget("http://8.8.8.8/x", { allow: [] })).host).toBe("8.8.8.8");
    expect((await checkUrlTarget("http://127.0.0.1:9/x", { allow: [parseCidr("127.0.0.1/32")] })).port).toBe("9");
  });
});
