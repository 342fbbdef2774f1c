/**
 * API keys through `app.request()` on the real Postgres and NATS: created, listed and revoked by operators, sent as
 * `Authorization: Bearer vpk_...` and held to the same role table as JWTs, limited to pipelines when created so,
 * stored as a hash only, and their last use recorded at most once a minute.
 */
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type pg from "pg";
import { signAccessToken, type Role } from "@vp/auth";
import { createPool, roleUrl } from "@vp/db";
import { createLogger } from "@vp/telemetry";
import { createTestBus, createTestDatabase, insertNodeFixture, insertPipelineFixture, TEST_AUTH, type TestBus, type TestDatabase } from "@vp/testkit";
import type { createApp } from "./app";
import { testApp, testAuth } from "./test-app";

const ROOT = "/v1/video_production";

let db: TestDatabase;
let bus: TestBus;
let reader: pg.Pool;
let editor: pg.Pool;
let scratch: string;
const logged: string[] = [];

function gateway(options: { devLogin?: boolean } = {}) {
  const destination = new Writable({
    write(chunk, _enc, cb) {
      logged.push(String(chunk));
      cb();
    },
  });
  const logger = createLogger({ service: "gateway-api-keys-test", level: "debug", destination });
  return testApp({ reader, editor, bus, scratch, logger }, { auth: testAuth(logger, { devLogin: options.devLogin }) });
}

let app: ReturnType<typeof createApp>;

async function call(method: string, path: string, options: { token?: string | null; body?: unknown } = {}) {
  const token = options.token === undefined ? await jwt(["viewer", "editor", "operator"]) : options.token;
  const headers: Record<string, string> = token === null ? {} : { authorization: `Bearer ${token}` };
  if (options.body !== undefined) headers["content-type"] = "application/json";
  const res = await app.request(`${ROOT}${path}`, { method, headers, body: options.body === undefined ? undefined : JSON.stringify(options.body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, text, headers: res.headers };
}

const jwt = (roles: Role[], subject = "ops@example.com") =>
  signAccessToken({ secret: TEST_AUTH.secret, issuer: TEST_AUTH.issuer, audience: TEST_AUTH.audience, subject, roles, ttlSeconds: 600 });

/** A new key from an all-roles operator; answers the whole key and what the API shows of it. */
async function createKey(body: { name?: string; roles: string[]; pipelines?: string[] }) {
  const res = await call("POST", "/api-keys", { body: { name: "CI", ...body } });
  expect(res.status, res.text).toBe(201);
  return { key: res.body.key as string, apiKey: res.body.api_key };
}

/** A pipeline with one ready text asset node, "script". */
async function pipelineWithAsset() {
  const pipeline = await insertPipelineFixture(db.admin);
  await insertNodeFixture(db.admin, { pipelineId: pipeline.id, id: "script", type: "asset", asset: { type: "text", content: "Hello" } });
  return pipeline.id;
}

const storedRow = async (id: string) => (await db.admin.query(`SELECT * FROM video_production_api_keys WHERE id = $1`, [id])).rows[0];

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "vp-gw-api-keys-"));
  db = await createTestDatabase();
  bus = await createTestBus();
  reader = createPool({ url: roleUrl(db.adminUrl, "vp_reader"), applicationName: "gw-api-keys-test-reader" });
  editor = createPool({ url: roleUrl(db.adminUrl, "vp_editor"), applicationName: "gw-api-keys-test-editor" });
  app = gateway();
});

afterAll(async () => {
  await reader?.end();
  await editor?.end();
  await bus?.cleanup();
  await db?.drop();
  await rm(scratch, { recursive: true, force: true });
});

describe("creating, listing and revoking keys", () => {
  it("answers the key once; the table holds only the SHA-256 of its secret; the list never shows a secret or hash", async () => {
    const created = await call("POST", "/api-keys", { body: { name: "CI deploy", roles: ["editor"] } });
    expect(created.status).toBe(201);
    const { key, api_key: apiKey } = created.body;
    expect(key).toMatch(/^vpk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    expect(apiKey).toEqual({
      id: key.slice(4, 20),
      name: "CI deploy",
      roles: ["viewer", "editor"],
      pipelines: null,
      created_by: "ops@example.com",
      created_at: expect.stringMatching(/Z$/),
      revoked_at: null,
      last_used_at: null,
    });

    const secret = key.slice(21);
    const row = await storedRow(apiKey.id);
    expect(Object.keys(row).sort()).toEqual(["created_at", "created_by", "id", "last_used_at", "name", "pipeline_ids", "revoked_at", "roles", "secret_hash"]);
    expect(row.secret_hash.equals(createHash("sha256").update(secret).digest())).toBe(true);
    expect(JSON.stringify(row)).not.toContain(secret);

    const list = await call("GET", "/api-keys");
    expect(list.status).toBe(200);
    expect(list.body.api_keys.find((k: { id: string }) => k.id === apiKey.id)).toEqual(apiKey);
    expect(list.text).not.toContain(secret);
    expect(list.text).not.toMatch(/hash/);
    expect(logged.join("")).not.toContain(secret);
  });

  it("works with a dev-login token", async () => {
    const dev = gateway({ devLogin: true });
    const login = await (await dev.request(`${ROOT}/auth/dev-login`, { method: "POST" })).json();
    const res = await dev.request(`${ROOT}/api-keys`, {
      method: "POST",
      headers: { authorization: `Bearer ${login.token}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "local script", roles: ["viewer"] }),
    });
    expect(res.status).toBe(201);
    expect((await res.json()).api_key.created_by).toBe("dev");
  });

  it("refuses bodies it cannot store, with the reason", async () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ name: "x", roles: ["admin"] }, /^roles\.0: /],
      [{ name: "x", roles: [] }, /^roles: /],
      [{ name: "", roles: ["viewer"] }, /^name: must not be empty/],
      [{ roles: ["viewer"] }, /^name: /],
      [{ name: "x", roles: ["viewer"], secret: "mine" }, /secret/],
      [{ name: "x", roles: ["viewer"], pipelines: [] }, /^pipelines: /],
      [{ name: "x", roles: ["viewer"], pipelines: ["../etc"] }, /^pipelines\.0: /],
      [{ name: "x", roles: ["viewer"], pipelines: ["no-such-pipeline"] }, /^pipelines: no pipeline has the id "no-such-pipeline"$/],
    ];
    for (const [body, reason] of cases) {
      const res = await call("POST", "/api-keys", { body });
      expect(res.status, JSON.stringify(body)).toBe(422);
      expect(res.body.error, JSON.stringify(body)).toMatch(reason);
    }
  });

  it("is for operators: a viewer or editor, by JWT or key, gets 403 naming the operator role", async () => {
    const { key: editorKey, apiKey } = await createKey({ roles: ["editor"] });
    for (const token of [await jwt(["viewer", "editor"]), editorKey]) {
      for (const [method, path, body] of [
        ["GET", "/api-keys", undefined],
        ["POST", "/api-keys", { name: "x", roles: ["viewer"] }],
        ["DELETE", `/api-keys/${apiKey.id}`, undefined],
      ] as const) {
        const res = await call(method, path, { token, body });
        expect(res.status, `${method} ${path}`).toBe(403);
        expect(res.body.missing_role).toBe("operator");
      }
    }
    expect((await storedRow(apiKey.id)).revoked_at).toBeNull();
  });

  it("lets an operator key create, list and revoke keys, but not grant a role its creator lacks", async () => {
    const { key: operatorKey, apiKey } = await createKey({ roles: ["operator"] });
    const made = await call("POST", "/api-keys", { token: operatorKey, body: { name: "by a key", roles: ["viewer"] } });
    expect(made.status).toBe(201);
    expect(made.body.api_key.created_by).toBe(`api-key:${apiKey.id}`);
    expect((await call("GET", "/api-keys", { token: operatorKey })).status).toBe(200);
    expect((await call("DELETE", `/api-keys/${made.body.api_key.id}`, { token: operatorKey })).status).toBe(204);
    const escalate = await call("POST", "/api-keys", { token: operatorKey, body: { name: "x", roles: ["editor"] } });
    expect(escalate.status).toBe(403);
    expect(escalate.body).toEqual({ error: "A key cannot have a role its creator lacks: you do not have editor", missing_role: "editor" });
  });

  it("revokes idempotently: a revoked key gets 401 with the reason; an unknown id is a 404", async () => {
    const { key, apiKey } = await createKey({ roles: ["viewer"] });
    expect((await call("GET", "/pipelines", { token: key })).status).toBe(200);
    expect((await call("DELETE", `/api-keys/${apiKey.id}`)).status).toBe(204);
    const revokedAt = (await storedRow(apiKey.id)).revoked_at;
    expect(revokedAt).toBeInstanceOf(Date);
    expect((await call("DELETE", `/api-keys/${apiKey.id}`)).status).toBe(204);
    expect((await storedRow(apiKey.id)).revoked_at).toEqual(revokedAt);

    const res = await call("GET", "/pipelines", { token: key });
    expect(res.status).toBe(401);
    expect(res.body.error).toBe(`The API key ${apiKey.id} was revoked at ${revokedAt.toISOString()}; ask an operator for a new one`);
    expect(res.headers.get("www-authenticate")).toMatch(/error="invalid_token"/);
    expect((await call("GET", "/api-keys")).body.api_keys.find((k: { id: string }) => k.id === apiKey.id).revoked_at).toBe(revokedAt.toISOString());

    for (const id of ["ffffffffffffffff", "not-a-key-id"]) {
      const missing = await call("DELETE", `/api-keys/${id}`);
      expect(missing.status, id).toBe(404);
      expect(missing.body.error).toBe("API key not found");
    }
  });

  it("answers 401 with the reason for an unknown or malformed key", async () => {
    const { key } = await createKey({ roles: ["viewer"] });
    const wrongSecret = `${key.slice(0, -1)}${key.endsWith("A") ? "B" : "A"}`;
    const unknownId = `vpk_ffffffffffffffff_${key.slice(21)}`;
    for (const token of [wrongSecret, unknownId]) {
      const res = await call("GET", "/pipelines", { token });
      expect(res.status).toBe(401);
      expect(res.body.error).toMatch(/^Unknown API key: no key has this id and secret/);
    }
    const malformed = await call("GET", "/pipelines", { token: "vpk_short" });
    expect(malformed.status).toBe(401);
    expect(malformed.body.error).toMatch(/^The API key is malformed/);
  });
});

describe("a key is held to the role table", () => {
  it("a viewer key reads but cannot create a pipeline or execute: 403 naming the missing role", async () => {
    const pipelineId = await pipelineWithAsset();
    const { key } = await createKey({ roles: ["viewer"] });
    expect((await call("GET", "/pipelines", { token: key })).status).toBe(200);
    expect((await call("GET", `/pipelines/${pipelineId}`, { token: key })).body.pipeline.nodes).toHaveLength(1);
    const create = await call("POST", "/pipelines", { token: key, body: { title: "no" } });
    expect(create.status).toBe(403);
    expect(create.body).toEqual({ error: `POST ${ROOT}/pipelines needs the editor role; this API key's roles: viewer`, missing_role: "editor" });
    const execute = await call("POST", `/pipelines/${pipelineId}/nodes/script/execute`, { token: key });
    expect(execute.status).toBe(403);
    expect(execute.body.missing_role).toBe("operator");
  });

  it("an editor key creates and edits pipelines but cannot execute; an operator key executes", async () => {
    const pipelineId = await pipelineWithAsset();
    const { key: editorKey } = await createKey({ roles: ["editor"] });
    const created = await call("POST", "/pipelines", { token: editorKey, body: { title: "by CI" } });
    expect(created.status).toBe(201);
    expect((await call("PATCH", `/pipelines/${pipelineId}/nodes/script`, { token: editorKey, body: { title: "Renamed" } })).status).toBe(200);
    expect((await call("POST", `/pipelines/${pipelineId}/nodes/script/execute`, { token: editorKey })).body.missing_role).toBe("operator");

    const { key: operatorKey } = await createKey({ roles: ["operator"] });
    const execute = await call("POST", `/pipelines/${pipelineId}/nodes/script/execute`, { token: operatorKey });
    // No scheduler in this test: the command is stored and the verdict is late (202), or it was queued (200).
    expect([200, 202], execute.text).toContain(execute.status);
  });

  it("records the last use, at most once a minute", async () => {
    const { key, apiKey } = await createKey({ roles: ["viewer"] });
    expect((await storedRow(apiKey.id)).last_used_at).toBeNull();
    expect((await call("GET", "/pipelines", { token: key })).status).toBe(200);
    const first = (await storedRow(apiKey.id)).last_used_at;
    expect(first).toBeInstanceOf(Date);
    for (let i = 0; i < 3; i++) expect((await call("GET", "/pipelines", { token: key })).status).toBe(200);
    expect((await storedRow(apiKey.id)).last_used_at).toEqual(first);
    // Another gateway (a new process) reads the recorded time and does not write again within the minute.
    expect((await gateway().request(`${ROOT}/pipelines`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(200);
    expect((await storedRow(apiKey.id)).last_used_at).toEqual(first);
    expect((await call("GET", "/api-keys")).body.api_keys.find((k: { id: string }) => k.id === apiKey.id).last_used_at).toBe(first.toISOString());
  });
});

describe("a key limited to pipelines", () => {
  it("reads and changes its pipeline only: any other, existing or not, is a 403 before anything runs", async () => {
    const a = await pipelineWithAsset();
    const b = await pipelineWithAsset();
    const { key, apiKey } = await createKey({ roles: ["viewer", "editor", "operator"], pipelines: [a] });
    expect(apiKey.pipelines).toEqual([a]);

    expect((await call("GET", `/pipelines/${a}`, { token: key })).status).toBe(200);
    expect((await call("PATCH", `/pipelines/${a}/nodes/script`, { token: key, body: { title: "Mine" } })).status).toBe(200);
    expect((await call("POST", `/pipelines/${a}/events/token`, { token: key })).status).toBe(201);
    // Who it is concerns no pipeline.
    expect((await call("GET", "/auth/me", { token: key })).body.roles).toEqual(["viewer", "editor", "operator"]);

    const refused: Array<[string, string, unknown?]> = [
      ["GET", `/pipelines/${b}`],
      ["GET", `/pipelines/${b}/nodes/script`],
      ["GET", `/pipelines/${b}/export`],
      ["GET", `/pipelines/${b}/runs`],
      ["POST", `/pipelines/${b}/events/token`],
      ["PATCH", `/pipelines/${b}`, { title: "Theirs" }],
      ["PATCH", `/pipelines/${b}/nodes/script`, { title: "Theirs" }],
      ["POST", `/pipelines/${b}/nodes/script/execute`],
      ["POST", `/pipelines/${b}/execute`],
      ["DELETE", `/pipelines/${b}`],
      ["GET", "/pipelines/no-such-pipeline"],
      // Percent-encoded, the id is still b's.
      ["GET", `/pipelines/%${b.charCodeAt(0).toString(16)}${b.slice(1)}`],
    ];
    for (const [method, path, body] of refused) {
      const res = await call(method, path, { token: key, body });
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(res.body.error, `${method} ${path}`).toMatch(/^This API key may not use pipeline ".+": it is limited to 1 pipeline /);
    }
    const pipelineB = await call("GET", `/pipelines/${b}`);
    expect(pipelineB.body.pipeline.title).not.toBe("Theirs");
    expect(pipelineB.body.pipeline.nodes.map((n: { title: string }) => n.title)).not.toContain("Theirs");
  });

  it("lists only its pipelines, and cannot create or import one, nor manage keys", async () => {
    const a = await pipelineWithAsset();
    await pipelineWithAsset();
    const { key } = await createKey({ roles: ["viewer", "editor", "operator"], pipelines: [a] });
    const list = await call("GET", "/pipelines", { token: key });
    expect(list.body.pipelines.map((p: { id: string }) => p.id)).toEqual([a]);
    expect(list.body.meta.total_count).toBe(1);

    for (const [method, path, body] of [
      ["POST", "/pipelines", { title: "new" }],
      ["POST", "/pipelines/import", { version: 1, title: "new", nodes: [] }],
    ] as const) {
      const res = await call(method, path, { token: key, body });
      expect(res.status, path).toBe(403);
      expect(res.body.error).toMatch(/cannot create one/);
    }
    for (const [method, path] of [
      ["GET", "/api-keys"],
      ["POST", "/api-keys"],
    ] as const) {
      const res = await call(method, path, { token: key, body: method === "POST" ? { name: "x", roles: ["viewer"] } : undefined });
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(res.body.error).toMatch(/may only list pipelines and use its own/);
    }
  });
});
