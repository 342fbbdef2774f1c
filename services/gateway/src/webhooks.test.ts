/**
 * Webhooks through `app.request()` and the gateway's delivery loop, on the real Postgres with a real HTTP receiver on
 * 127.0.0.1 (admitted by the allow setting where a test says so): endpoints created (secret shown once, stored
 * encrypted), refused at internal addresses, listed and deleted by editors only; finished runs and failed nodes
 * delivered signed (verified with the standardwebhooks package), retried on failure, logged attempt by attempt,
 * redelivered by hand; the URL checked again when sending.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type pg from "pg";
import { signAccessToken, type Role } from "@vp/auth";
import { WebhookPayload } from "@vp/contracts";
import { createPool, roleUrl } from "@vp/db";
import { createLogger } from "@vp/telemetry";
import { createTestBus, createTestDatabase, insertNodeFixture, insertPipelineFixture, TEST_AUTH, type TestBus, type TestDatabase } from "@vp/testkit";
import { parseCidr, type Resolver } from "@vp/url-guard";
import type { createApp } from "./app";
import { testApp } from "./test-app";
import type { GatewayWebhooks } from "./deps";
import { decryptWebhookSecret } from "./webhooks/secrets";
import { startWebhookWorker } from "./webhooks/worker";

const ROOT = "/v1/video_production";
const KEY = randomBytes(32);
const LOOPBACK = [parseCidr("127.0.0.1/32")];

let db: TestDatabase;
let bus: TestBus;
let reader: pg.Pool;
let editor: pg.Pool;
let scratch: string;
const logged: string[] = [];
const logger = createLogger({
  service: "gateway-webhooks-test",
  level: "debug",
  destination: new Writable({
    write(chunk, _enc, cb) {
      logged.push(String(chunk));
      cb();
    },
  }),
});

function gateway(webhooks?: GatewayWebhooks) {
  return testApp({ reader, editor, bus, scratch, logger }, { webhooks });
}

const jwt = (roles: Role[]) =>
  signAccessToken({ secret: TEST_AUTH.secret, issuer: TEST_AUTH.issuer, audience: TEST_AUTH.audience, subject: "ed@example.com", roles, ttlSeconds: 600 });

async function call(app: ReturnType<typeof createApp>, method: string, path: string, options: { roles?: Role[]; body?: unknown } = {}) {
  const headers: Record<string, string> = { authorization: `Bearer ${await jwt(options.roles ?? ["viewer", "editor", "operator"])}` };
  if (options.body !== undefined) headers["content-type"] = "application/json";
  const res = await app.request(`${ROOT}${path}`, { method, headers, body: options.body === undefined ? undefined : JSON.stringify(options.body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, text };
}

/** A webhook receiver on 127.0.0.1 answering each request with the next status of `statuses` (then 200). */
async function receiver(statuses: number[] = []) {
  const got: Array<{ body: string; headers: IncomingHttpHeaders }> = [];
  const server: Server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8").on("data", (chunk: string) => (body += chunk));
    req.on("end", () => {
      got.push({ body, headers: req.headers });
      const status = statuses.shift() ?? 200;
      res.writeHead(status, { "content-type": "text/plain" }).end(status === 200 ? "thanks" : `nope ${status}`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/hook`,
    got,
    async waitFor(count: number, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (got.length < count) {
        if (Date.now() > deadline) throw new Error(`receiver got ${got.length} of ${count} deliveries in ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 25));
      }
      return got;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const verify = (secret: string, delivery: { body: string; headers: IncomingHttpHeaders }) =>
  new Webhook(secret).verify(delivery.body, {
    "webhook-id": String(delivery.headers["webhook-id"]),
    "webhook-timestamp": String(delivery.headers["webhook-timestamp"]),
    "webhook-signature": String(delivery.headers["webhook-signature"]),
  });

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "vp-gw-webhooks-"));
  db = await createTestDatabase();
  bus = await createTestBus();
  reader = createPool({ url: roleUrl(db.adminUrl, "vp_reader"), applicationName: "gw-webhooks-test-reader" });
  editor = createPool({ url: roleUrl(db.adminUrl, "vp_editor"), applicationName: "gw-webhooks-test-editor" });
});

afterAll(async () => {
  await reader?.end();
  await editor?.end();
  await bus?.cleanup();
  await db?.drop();
  await rm(scratch, { recursive: true, force: true });
});

describe("webhook endpoints", () => {
  it("are created with a secret shown once and stored encrypted, listed without it, and deleted with their log", async () => {
    const app = gateway({ key: KEY, allow: LOOPBACK });
    const { id: P } = await insertPipelineFixture(db.admin);
    const created = await call(app, "POST", `/pipelines/${P}/webhooks`, { body: { url: "http://127.0.0.1:9/hook", events: ["run.finished", "node.failed"] } });
    expect(created.status, created.text).toBe(201);
    const { webhook, secret } = created.body;
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(webhook).toEqual({
      id: expect.stringMatching(/^wh_[0-9a-f]{24}$/),
      pipeline_id: P,
      url: "http://127.0.0.1:9/hook",
      events: ["run.finished", "node.failed"],
      created_by: "ed@example.com",
      created_at: expect.stringMatching(/Z$/),
    });
    const { rows } = await db.admin.query(`SELECT * FROM video_production_webhook_endpoints WHERE id = $1`, [webhook.id]);
    expect(JSON.stringify(rows[0])).not.toContain(secret.slice(6));
    expect(decryptWebhookSecret(KEY, webhook.id, rows[0].secret_ciphertext)).toBe(secret);
    expect(() => decryptWebhookSecret(randomBytes(32), webhook.id, rows[0].secret_ciphertext)).toThrow(/cannot be decrypted with WEBHOOK_SECRET_KEY/);
    expect(logged.join("")).not.toContain(secret.slice(6));

    const list = await call(app, "GET", `/pipelines/${P}/webhooks`, { roles: ["editor"] });
    expect(list.body).toEqual({ webhooks: [webhook] });
    expect(list.text).not.toContain(secret.slice(6));
    expect((await call(app, "GET", `/pipelines/${P}/webhooks/${webhook.id}/deliveries`)).body).toEqual({ deliveries: [] });

    expect((await call(app, "DELETE", `/pipelines/${P}/webhooks/${webhook.id}`)).status).toBe(204);
    expect(await call(app, "DELETE", `/pipelines/${P}/webhooks/${webhook.id}`)).toMatchObject({ status: 404, body: { error: "Webhook not found" } });
    expect((await call(app, "GET", `/pipelines/${P}/webhooks`)).body).toEqual({ webhooks: [] });
  });

  it("are the editor's: a viewer may not list them, an operator may not make one", async () => {
    const app = gateway({ key: KEY, allow: LOOPBACK });
    const { id: P } = await insertPipelineFixture(db.admin);
    expect(await call(app, "GET", `/pipelines/${P}/webhooks`, { roles: ["viewer"] })).toMatchObject({ status: 403, body: { missing_role: "editor" } });
    expect(await call(app, "GET", `/pipelines/${P}/webhooks/wh_${"0".repeat(24)}/deliveries`, { roles: ["operator"] })).toMatchObject({ status: 403 });
    expect(
      await call(app, "POST", `/pipelines/${P}/webhooks`, { roles: ["operator"], body: { url: "http://127.0.0.1:9/", events: ["run.finished"] } }),
    ).toMatchObject({ status: 403, body: { missing_role: "editor" } });
  });

  it("refuse internal addresses (422 with the reason) when no allow setting admits them", async () => {
    const app = gateway({ key: KEY, allow: [] });
    const { id: P } = await insertPipelineFixture(db.admin);
    const refused = {
      "http://127.0.0.1:8080/hook": "url: 127.0.0.1 is a loopback address; webhooks are only sent to public addresses",
      "http://10.0.0.5/hook": "url: 10.0.0.5 is a private address; webhooks are only sent to public addresses",
      "http://169.254.169.254/latest/meta-data/":
        "url: 169.254.169.254 is a link-local address (where cloud metadata services answer); webhooks are only sent to public addresses",
      "http://[::1]:8080/hook": "url: ::1 is a loopback address; webhooks are only sent to public addresses",
      "ftp://example.com/hook": "url: only http and https URLs are allowed, not ftp:; webhooks are only sent to public addresses",
    };
    for (const [url, error] of Object.entries(refused)) {
      expect(await call(app, "POST", `/pipelines/${P}/webhooks`, { body: { url, events: ["run.finished"] } }), url).toMatchObject({
        status: 422,
        body: { error },
      });
    }
    const local = await call(app, "POST", `/pipelines/${P}/webhooks`, { body: { url: "http://localhost:8080/hook", events: ["run.finished"] } });
    expect(local).toMatchObject({ status: 422, body: { error: expect.stringMatching(/^url: localhost resolves to (127\.0\.0\.1|::1), a loopback address/) } });
    // A name resolving inside.
    const rebound: Resolver = async () => [{ address: "10.1.2.3", family: 4 }];
    const named = await call(gateway({ key: KEY, allow: [], resolver: rebound }), "POST", `/pipelines/${P}/webhooks`, {
      body: { url: "https://hooks.example.com/x", events: ["run.finished"] },
    });
    expect(named).toMatchObject({ status: 422, body: { error: expect.stringContaining("hooks.example.com resolves to 10.1.2.3, a private address") } });
    expect((await call(app, "GET", `/pipelines/${P}/webhooks`)).body).toEqual({ webhooks: [] });
  });

  it("refuse unknown events, a pipeline past its limit, and creation without WEBHOOK_SECRET_KEY", async () => {
    const app = gateway({ key: KEY, allow: LOOPBACK, maxPerPipeline: 1 });
    const { id: P } = await insertPipelineFixture(db.admin);
    const create = (body: unknown, on = app) => call(on, "POST", `/pipelines/${P}/webhooks`, { body });
    expect(await create({ url: "http://127.0.0.1:9/", events: ["run.started"] })).toMatchObject({
      status: 422,
      body: { error: expect.stringMatching(/^events\.0: /) },
    });
    expect(await create({ url: "http://127.0.0.1:9/", events: [] })).toMatchObject({ status: 422 });
    expect(await create({ url: "http://127.0.0.1:9/", events: ["run.finished"], secret: "mine" })).toMatchObject({ status: 422 });
    expect((await create({ url: "http://127.0.0.1:9/", events: ["run.finished"] })).status).toBe(201);
    expect(await create({ url: "http://127.0.0.1:9/", events: ["run.finished"] })).toMatchObject({
      status: 422,
      body: { error: "This pipeline already has 1 webhook endpoints, the most one pipeline may have (1); delete one first", limit: "webhooks", max: 1 },
    });
    expect(await create({ url: "http://8.8.8.8/hook", events: ["run.finished"] }, gateway())).toMatchObject({
      status: 503,
      body: { error: expect.stringMatching(/^Webhooks are not set up on this gateway: WEBHOOK_SECRET_KEY is not set/) },
    });
    expect(await call(app, "POST", "/pipelines/nope/webhooks", { body: { url: "http://127.0.0.1:9/", events: ["run.finished"] } })).toMatchObject({
      status: 404,
      body: { error: "Pipeline not found" },
    });
    expect(await call(app, "GET", `/pipelines/${P}/webhooks/wh_nope/deliveries`)).toMatchObject({ status: 404, body: { error: "Webhook not found" } });
  });
});

describe("deliveries", () => {
  const schedule = [150, 150, 150];
  const worker = (over: { allow?: typeof LOOPBACK; resolver?: Resolver } = {}) =>
    startWebhookWorker({ db: editor, logger, key: KEY, allow: LOOPBACK, retrySchedule: schedule, timeoutMs: 2000, ...over }, { pollIntervalMs: 50 });

  it("a finished run and a failed node reach the receiver signed, after the endpoint was made only, once each", async () => {
    const app = gateway({ key: KEY, allow: LOOPBACK });
    const hook = await receiver();
    const { id: P } = await insertPipelineFixture(db.admin);
    await db.admin.query(
      `INSERT INTO video_production_runs (id, pipeline_id, kind, node_ids, status, finished_at) VALUES ('r-old', $1, 'all', '[]', 'failed', now())`,
      [P],
    );
    const { body } = await call(app, "POST", `/pipelines/${P}/webhooks`, { body: { url: hook.url, events: ["run.finished", "node.failed"] } });
    await db.admin.query(
      `INSERT INTO video_production_runs (id, pipeline_id, kind, node_ids, status, metadata, finished_at)
       VALUES ('r-1', $1, 'all', '["bad"]', 'failed', '{"counts": {"failed": 1}}', clock_timestamp())`,
      [P],
    );
    const failedAt = new Date().toISOString();
    await insertNodeFixture(db.admin, {
      pipelineId: P,
      id: "bad",
      title: "Bad clip",
      status: "failed",
      metadata: { jobId: "j-1", runId: "r-1", error: "not a readable media file", completedAt: failedAt },
    });
    const running = worker();
    try {
      const got = await hook.waitFor(2);
      const payloads = got.map((d) => WebhookPayload.parse(verify(body.secret, d)));
      expect(payloads.find((p) => p.type === "run.finished")).toEqual({
        type: "run.finished",
        timestamp: expect.stringMatching(/Z$/),
        data: {
          pipeline_id: P,
          run: expect.objectContaining({ id: "r-1", pipeline_id: P, kind: "all", status: "failed", node_ids: ["bad"], metadata: { counts: { failed: 1 } } }),
        },
      });
      expect(payloads.find((p) => p.type === "node.failed")).toEqual({
        type: "node.failed",
        timestamp: failedAt,
        data: {
          pipeline_id: P,
          node_id: "bad",
          node_type: "asset",
          title: "Bad clip",
          error: "not a readable media file",
          job_id: "j-1",
          run_id: "r-1",
          failed_at: failedAt,
        },
      });
      for (const d of got) {
        expect(d.headers["webhook-id"]).toMatch(/^msg_[0-9a-f]{32}$/);
        expect(d.headers["content-type"]).toBe("application/json");
        expect(() => verify(`whsec_${randomBytes(32).toString("base64")}`, d)).toThrow();
      }
      await new Promise((r) => setTimeout(r, 400));
      expect(hook.got).toHaveLength(2);
    } finally {
      await running.stop();
      await hook.close();
    }
  });

  it("a receiver answering 500 twice then 200 gets the event three times, each attempt in the log; redeliver sends it again", async () => {
    const app = gateway({ key: KEY, allow: LOOPBACK });
    const hook = await receiver([500, 500]);
    const { id: P } = await insertPipelineFixture(db.admin);
    const { body } = await call(app, "POST", `/pipelines/${P}/webhooks`, { body: { url: hook.url, events: ["run.finished"] } });
    await db.admin.query(
      `INSERT INTO video_production_runs (id, pipeline_id, kind, node_ids, status, finished_at) VALUES ('r-2', $1, 'all', '[]', 'completed', clock_timestamp())`,
      [P],
    );
    const running = worker();
    try {
      const got = await hook.waitFor(3);
      const ids = new Set(got.map((d) => d.headers["webhook-id"]));
      expect(ids.size).toBe(1);
      for (const d of got) expect(verify(body.secret, d)).toMatchObject({ type: "run.finished", data: { run: { id: "r-2" } } });
      const deliveriesPath = `/pipelines/${P}/webhooks/${body.webhook.id}/deliveries`;
      const waitForLog = async (attempts: number) => {
        for (let i = 0; i < 100; i++) {
          const [delivery] = (await call(app, "GET", deliveriesPath)).body.deliveries;
          if (delivery?.status === "delivered" && delivery.attempts.length === attempts) return delivery;
          await new Promise((r) => setTimeout(r, 50));
        }
        throw new Error(`no delivered delivery with ${attempts} attempts`);
      };
      const delivery = await waitForLog(3);
      expect(delivery).toMatchObject({ id: [...ids][0], event_type: "run.finished", status: "delivered", attempt_count: 3, next_attempt_at: null });
      expect(delivery.attempts.map((a: Record<string, unknown>) => [a.attempt, a.manual, a.status_code, a.response_body, a.error])).toEqual([
        [1, false, 500, "nope 500", null],
        [2, false, 500, "nope 500", null],
        [3, false, 200, "thanks", null],
      ]);
      for (const a of delivery.attempts) expect(a.duration_ms).toBeGreaterThanOrEqual(0);

      const redelivered = await call(app, "POST", `${deliveriesPath}/${delivery.id}/redeliver`);
      expect(redelivered).toMatchObject({ status: 202, body: { delivery: { id: delivery.id, status: "pending" } } });
      await hook.waitFor(4);
      expect(hook.got[3]!.headers["webhook-id"]).toBe(delivery.id);
      expect(verify(body.secret, hook.got[3]!)).toMatchObject({ type: "run.finished" });
      expect((await waitForLog(4)).attempts[3]).toMatchObject({ attempt: 4, manual: true, status_code: 200 });
      expect(await call(app, "POST", `${deliveriesPath}/msg_${"0".repeat(32)}/redeliver`)).toMatchObject({
        status: 404,
        body: { error: "Delivery not found" },
      });
    } finally {
      await running.stop();
      await hook.close();
    }
  });

  it("checks the address again when sending: a name that now resolves inside is refused, and the attempt logged with the reason", async () => {
    const publicName: Resolver = async () => [{ address: "93.184.216.34", family: 4 }];
    const app = gateway({ key: KEY, allow: [], resolver: publicName });
    const { id: P } = await insertPipelineFixture(db.admin);
    const hook = await receiver();
    const port = new URL(hook.url).port;
    const created = await call(app, "POST", `/pipelines/${P}/webhooks`, { body: { url: `http://hooks.example.com:${port}/hook`, events: ["run.finished"] } });
    expect(created.status, created.text).toBe(201);
    await db.admin.query(
      `INSERT INTO video_production_runs (id, pipeline_id, kind, node_ids, status, finished_at) VALUES ('r-3', $1, 'all', '[]', 'completed', clock_timestamp())`,
      [P],
    );
    const rebound: Resolver = async () => [{ address: "127.0.0.1", family: 4 }];
    const running = worker({ allow: [], resolver: rebound });
    try {
      const deliveriesPath = `/pipelines/${P}/webhooks/${created.body.webhook.id}/deliveries`;
      let delivery: any;
      for (let i = 0; i < 100 && delivery?.status !== "failed"; i++) {
        [delivery] = (await call(app, "GET", deliveriesPath)).body.deliveries;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(delivery).toMatchObject({ status: "failed", attempt_count: 4 });
      expect(delivery.attempts[0]).toMatchObject({
        status_code: null,
        error: `refusing to send to http://hooks.example.com:${port}/hook: hooks.example.com resolves to 127.0.0.1, a loopback address`,
      });
      expect(hook.got).toEqual([]);
    } finally {
      await running.stop();
      await hook.close();
    }
  });
});
