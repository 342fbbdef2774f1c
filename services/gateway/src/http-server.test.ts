/**
 * The gateway's HTTP server policies on a real Node server (startHttpServer) in front of the real app, Postgres
 * and NATS: where it listens, the request timeout and the upload's idle timeout, answers given before the body
 * arrived (readable by the client), the dev login's Host rule, request ids, logs, and output headers.
 */
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import type { ServerType } from "@hono/node-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPool, roleUrl } from "@vp/db";
import { createLocalStorage } from "@vp/storage";
import { createLogger, formatLogLine } from "@vp/telemetry";
import {
  createTestBus,
  createTestDatabase,
  insertNodeFixture,
  insertPipelineFixture,
  TEST_AUTH,
  testToken,
  type TestBus,
  type TestDatabase,
} from "@vp/testkit";
import type pg from "pg";
import { createApp } from "./app";
import { createGatewayAuth, devLoginRefusal } from "./auth";
import { listenHost, startHttpServer } from "./http-server";

const API = "/v1/video_production";
const REQUEST_TIMEOUT_MS = 1000;
const UPLOAD_IDLE_TIMEOUT_MS = 800;
const MAX_UPLOAD = 1024 * 1024;

let db: TestDatabase;
let bus: TestBus;
let reader: pg.Pool;
let editor: pg.Pool;
let scratch: string;
let server: ServerType;
let port = 0;
let token = "";
const logLines: string[] = [];

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "vp-gw-http-"));
  [db, bus] = await Promise.all([createTestDatabase(), createTestBus()]);
  reader = createPool({ url: roleUrl(db.adminUrl, "vp_reader"), applicationName: "gw-http-reader" });
  editor = createPool({ url: roleUrl(db.adminUrl, "vp_editor"), applicationName: "gw-http-editor" });
  const destination = new Writable({
    write(chunk, _encoding, done) {
      logLines.push(...String(chunk).split("\n").filter(Boolean));
      done();
    },
  });
  const logger = createLogger({ service: "gateway-http-test", level: "info", destination });
  const auth = createGatewayAuth(
    {
      mode: "jwt",
      secret: TEST_AUTH.secret,
      issuer: TEST_AUTH.issuer,
      audience: TEST_AUTH.audience,
      devLogin: true,
      devLoginTtlSeconds: 600,
      devLoginHosts: ["editor.test"],
    },
    logger,
  );
  const app = createApp({
    reader,
    editor,
    bus: bus.bus,
    topology: bus.topology,
    storage: createLocalStorage({ root: join(scratch, "storage") }),
    logger,
    auth,
    maxUploadBytes: MAX_UPLOAD,
    uploadIdleTimeoutMs: UPLOAD_IDLE_TIMEOUT_MS,
    executeVerdictTimeoutMs: 5000,
    corsOrigins: [],
    closing: new Promise(() => {}),
  });
  server = await new Promise<ServerType>((resolve) => {
    const s = startHttpServer(app.fetch, { port: 0, hostname: "127.0.0.1", requestTimeoutMs: REQUEST_TIMEOUT_MS }, (info) => {
      port = info.port;
      resolve(s);
    });
  });
  token = await testToken();
});

afterAll(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  await reader?.end();
  await editor?.end();
  await bus?.cleanup();
  await db?.drop();
  await rm(scratch, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------------
// A raw HTTP/1.1 client: it writes when told and reads only when told, as simple clients do.

interface Raw {
  socket: Socket;
  /** Everything received so far. */
  received(): string;
  /** Resolves with all bytes received once the server closed the connection; `error` is the socket's first error. */
  closed: Promise<{ text: string; error?: NodeJS.ErrnoException }>;
  write(data: string | Buffer): Promise<NodeJS.ErrnoException | undefined>;
}

function raw(head: string, options: { readWhileSending?: boolean } = {}): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port });
    const chunks: Buffer[] = [];
    let error: NodeJS.ErrnoException | undefined;
    socket.on("data", (c: Buffer) => chunks.push(c));
    const closed = new Promise<{ text: string; error?: NodeJS.ErrnoException }>((done) => {
      socket.on("error", (e: NodeJS.ErrnoException) => (error ??= e));
      socket.on("close", () => done({ text: Buffer.concat(chunks).toString("utf8"), error }));
    });
    socket.once("connect", () => {
      if (!options.readWhileSending) socket.pause();
      socket.write(head);
      resolve({
        socket,
        received: () => Buffer.concat(chunks).toString("utf8"),
        closed,
        write: (data) =>
          new Promise((done) =>
            socket.destroyed ? done(error ?? Object.assign(new Error("closed"), { code: "ECLOSED" })) : socket.write(data, (e) => done(e ?? undefined)),
          ),
      });
    });
    socket.once("error", reject);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const statusOf = (text: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
const bodyOf = (text: string) => JSON.parse(text.slice(text.indexOf("\r\n\r\n") + 4)) as { error?: string; node?: any };

async function pendingAssetNode(): Promise<string> {
  const pipeline = await insertPipelineFixture(db.admin);
  await insertNodeFixture(db.admin, { pipelineId: pipeline.id, id: "clip", title: "clip", type: "asset", asset: { type: "text" }, status: "pending" });
  return pipeline.id;
}

const uploadHead = (pipelineId: string, length: number) =>
  `PUT ${API}/pipelines/${pipelineId}/nodes/clip/asset HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${token}\r\nContent-Type: text/plain\r\nContent-Length: ${length}\r\n\r\n`;

async function storedFiles(pipelineId: string): Promise<string[]> {
  const dir = join(scratch, "storage", "pipelines", pipelineId);
  const out: string[] = [];
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      if (e.isDirectory()) await walk(join(d, e.name));
      else out.push(join(d, e.name));
    }
  };
  await walk(dir);
  return out;
}

describe("listening address", () => {
  it("listens on loopback while the dev login is on or auth is off, unless HOST says otherwise", () => {
    expect(listenHost({ AUTH_DEV_LOGIN: true, AUTH_MODE: "jwt" })).toBe("127.0.0.1");
    expect(listenHost({ AUTH_DEV_LOGIN: false, AUTH_MODE: "off" })).toBe("127.0.0.1");
    expect(listenHost({ AUTH_DEV_LOGIN: false, AUTH_MODE: "jwt" })).toBe("0.0.0.0");
    expect(listenHost({ HOST: "0.0.0.0", AUTH_DEV_LOGIN: true, AUTH_MODE: "jwt" })).toBe("0.0.0.0");
    expect(listenHost({ HOST: "::1", AUTH_DEV_LOGIN: false, AUTH_MODE: "jwt" })).toBe("::1");
  });
});

describe("request timeout and uploads", () => {
  it("a slow upload that keeps moving finishes even when it takes longer than the request timeout", async () => {
    const pipelineId = await pendingAssetNode();
    const chunk = Buffer.alloc(4096, "a");
    const chunks = 24;
    const started = Date.now();
    const client = await raw(uploadHead(pipelineId, chunk.length * chunks), { readWhileSending: true });
    for (let i = 0; i < chunks; i++) {
      expect(await client.write(chunk)).toBeUndefined();
      await sleep(100);
    }
    while (!client.received().includes("\r\n\r\n{")) await sleep(20);
    await sleep(50);
    const elapsed = Date.now() - started;
    client.socket.destroy();
    expect(elapsed).toBeGreaterThan(2 * REQUEST_TIMEOUT_MS);
    expect(statusOf(client.received()), client.received().slice(0, 300)).toBe(200);
    expect(bodyOf(client.received()).node.asset).toMatchObject({ size: chunk.length * chunks, contentType: "text/plain" });
  });

  it("a stalled upload is answered 408 with the reason, the connection closes, and nothing is stored", async () => {
    const pipelineId = await pendingAssetNode();
    const started = Date.now();
    const client = await raw(uploadHead(pipelineId, 64 * 1024), { readWhileSending: true });
    await client.write(Buffer.alloc(8192, "a"));
    const { text } = await client.closed;
    expect(Date.now() - started).toBeLessThan(UPLOAD_IDLE_TIMEOUT_MS + 10_000);
    expect(statusOf(text), text.slice(0, 300)).toBe(408);
    expect(text.toLowerCase()).toContain("connection: close");
    expect(bodyOf(text).error).toBe("The upload stalled: no data arrived for 1 s; send the file again");
    expect(await storedFiles(pipelineId)).toEqual([]);
    const { rows } = await db.admin.query("SELECT asset FROM video_production_nodes WHERE pipeline_id = $1", [pipelineId]);
    expect(rows[0].asset).toEqual({ type: "text" });
  });

  it("a request other than an upload whose body does not arrive within the request timeout gets a 408", async () => {
    const body = JSON.stringify({ title: "never finished" });
    const client = await raw(
      `POST ${API}/pipelines HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: ${body.length + 10}\r\n\r\n`,
      { readWhileSending: true },
    );
    const started = Date.now();
    await client.write(body);
    const { text } = await client.closed;
    expect(Date.now() - started).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 50);
    expect(statusOf(text), text.slice(0, 300)).toBe(408);
    expect(bodyOf(text).error).toMatch(/did not arrive whole in time/);
    const { rows } = await db.admin.query("SELECT 1 FROM video_production_pipelines WHERE title = 'never finished'");
    expect(rows).toEqual([]);
  });

  it("a body over the limit is answered 413, readable by a client that reads only after sending its whole body", async () => {
    const size = 2 * 1024 * 1024 + 10;
    const client = await raw(
      `POST ${API}/pipelines HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: ${size}\r\n\r\n`,
    );
    // 64 KiB every 40 ms: the body takes over a second to send, far longer than the answer.
    const piece = Buffer.alloc(64 * 1024, "x");
    let sent = 0;
    let writeError: NodeJS.ErrnoException | undefined;
    while (sent < size && !writeError) {
      const n = Math.min(piece.length, size - sent);
      writeError = await client.write(piece.subarray(0, n));
      sent += n;
      await sleep(40);
    }
    client.socket.resume();
    const { text, error } = await client.closed;
    expect(writeError, `writing the body failed after ${sent} bytes`).toBeUndefined();
    expect(error).toBeUndefined();
    expect(statusOf(text), text.slice(0, 300)).toBe(413);
    expect(text.toLowerCase()).toContain("connection: close");
    expect(bodyOf(text).error).toBe(`Request body exceeds ${1024 * 1024} bytes`);
  });
});

describe("the dev login's Host rule", () => {
  const devLogin = (host: string) =>
    raw(`POST ${API}/auth/dev-login HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`, { readWhileSending: true }).then(
      (c) => c.closed,
    );

  it("answers localhost, 127.0.0.1 and [::1] from this machine, and names in AUTH_DEV_LOGIN_HOSTS", async () => {
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, "LOCALHOST", `editor.test:${port}`]) {
      const { text } = await devLogin(host);
      expect(statusOf(text), `${host}: ${text.slice(0, 200)}`).toBe(201);
      expect((bodyOf(text) as { token?: unknown }).token).toEqual(expect.any(String));
    }
  });

  it("refuses a foreign Host (a page rebinding its name to 127.0.0.1) with 403 and no token", async () => {
    for (const host of [`attacker.example:${port}`, "attacker.example", "localhost.attacker.example", "127.0.0.1.nip.io", "localhost."]) {
      const { text } = await devLogin(host);
      expect(statusOf(text), `${host}: ${text.slice(0, 200)}`).toBe(403);
      expect(bodyOf(text).error).toMatch(/^The dev login answers only requests for localhost, 127\.0\.0\.1 or \[::1\]/);
      expect(text).not.toContain('"token"');
    }
  });

  it("refuses a local Host sent from another address (an in-cluster caller forging Host)", () => {
    const none = new Set<string>();
    expect(devLoginRefusal("localhost:3061", "127.0.0.1", none)).toBeNull();
    expect(devLoginRefusal("localhost:3061", "::ffff:127.0.0.1", none)).toBeNull();
    expect(devLoginRefusal("[::1]:3061", "::1", none)).toBeNull();
    expect(devLoginRefusal("localhost:3061", "10.1.2.3", none)).toMatch(/only requests from this machine \(this one came from 10\.1\.2\.3\)/);
    expect(devLoginRefusal("127.0.0.1", "::ffff:192.168.1.5", none)).not.toBeNull();
    expect(devLoginRefusal("editor.test", "10.1.2.3", new Set(["editor.test"]))).toBeNull();
    expect(devLoginRefusal(undefined, "127.0.0.1", none)).not.toBeNull();
  });
});

describe("request ids and logs", () => {
  const get = (headers: string) =>
    raw(`POST ${API}/auth/session HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${headers}Content-Length: 0\r\nConnection: close\r\n\r\n`, {
      readWhileSending: true,
    }).then((c) => c.closed);
  const requestIdOf = (text: string) => /\r\nx-request-id: ([^\r]*)\r\n/i.exec(text)?.[1];

  it("a caller's request id is echoed when short and plain; a long or odd one is replaced, never echoed or logged", async () => {
    const plain = `req-${"a".repeat(120)}`;
    expect(requestIdOf((await get(`Authorization: Bearer ${token}\r\nx-request-id: ${plain}\r\n`)).text)).toBe(plain);
    for (const hostile of ["b".repeat(8000), `${"c".repeat(129)}`, "id with spaces", "id/../../etc"]) {
      const { text } = await get(`Authorization: Bearer ${token}\r\nx-request-id: ${hostile}\r\n`);
      const echoed = requestIdOf(text);
      expect(echoed).toMatch(/^[0-9a-f-]{36}$/);
      expect(text).not.toContain(hostile.slice(0, 64));
      expect(logLines.some((l) => l.includes(hostile.slice(0, 64)))).toBe(false);
    }
  });

  it("a token subject with a newline and ANSI codes cannot forge a line in the printed log", async () => {
    const forged = 'mallory\n{"level":30,"msg":"admin signed in"}\u001b[2K\u001b[1A\u2028INFO  fake';
    const subjectToken = await testToken(["viewer"], { subject: forged });
    const before = logLines.length;
    const { text } = await get(`Authorization: Bearer ${subjectToken}\r\n`);
    expect(statusOf(text)).toBe(204);
    const line = logLines.slice(before).find((l) => JSON.parse(l).msg === "request" && JSON.parse(l).path === `${API}/auth/session`);
    expect(line).toBeDefined();
    const { sub } = JSON.parse(line!) as { sub: string };
    expect(sub).toBe('mallory\\u000a{"level":30,"msg":"admin signed in"}\\u001b[2K\\u001b[1A\\u2028INFO  fake');
    const printed = formatLogLine(line!);
    expect(printed.split("\n")).toHaveLength(1);
    // Only the printer's own dim styling is an escape sequence on the printed line.
    expect(printed.replace("\u001b[2m", "").replace("\u001b[0m", "")).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/);
  });
});

describe("output answers", () => {
  it("serves a text output as UTF-8 with nosniff and a sandboxing CSP", async () => {
    const pipeline = await insertPipelineFixture(db.admin);
    const key = `pipelines/${pipeline.id}/nodes/script/run-1/output.txt`;
    const storage = createLocalStorage({ root: join(scratch, "storage") });
    await storage.put(key, Buffer.from("<script>alert(1)</script> héllo"));
    await insertNodeFixture(db.admin, {
      pipelineId: pipeline.id,
      id: "script",
      title: "script",
      type: "asset",
      asset: { type: "text", content: "x" },
      status: "completed",
      output: { type: "text", s3Key: key, size: 33, contentType: "text/plain" },
    });
    const response = await fetch(`http://127.0.0.1:${port}${API}/pipelines/${pipeline.id}/nodes/script/output`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/plain; charset=utf-8");
    expect(response.headers.get("x-content-type-options")).toBe("nosniff");
    expect(response.headers.get("content-security-policy")).toMatch(/default-src 'none'.*; sandbox$/);
    expect(await response.text()).toBe("<script>alert(1)</script> héllo");
  });
});
