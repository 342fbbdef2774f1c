/**
 * Batches through `app.request()` on the real Postgres and NATS (no scheduler: the driver's run requests are
 * accepted unanswered, and runs are recorded here as the state-writer would): rows checked all at once, from JSON or
 * CSV, before anything is created; the estimate with shared work counted once; roles and API keys; cancel, retry; the
 * driver starting the first row alone, then the rest up to the concurrency, recording outcomes and webhooks; the zip.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signAccessToken, type Role } from "@vp/auth";
import { createRun, finishRun } from "@vp/db";
import { estimateNodeCost, type EstimatedNode } from "@vp/flow-graph";
import { createLocalStorage } from "@vp/storage";
import { createLogger } from "@vp/telemetry";
import { createTestBus, createTestDatabase, TEST_AUTH, type TestBus, type TestDatabase } from "@vp/testkit";
import { driveBatches } from "../batches/driver";
import { testApp } from "../test-app";

const exec = promisify(execFile);
const ROOT = "/v1/video_production";
const logger = createLogger({ service: "gateway-batches-test", level: "warn" });

let db: TestDatabase;
let bus: TestBus;
let scratch: string;
let app: ReturnType<typeof testApp>;

beforeAll(async () => {
  db = await createTestDatabase();
  bus = await createTestBus();
  scratch = await mkdtemp(join(tmpdir(), "vp-batches-"));
  app = testApp({ reader: db.pools.reader, editor: db.pools.editor, bus, scratch, logger });
});

afterAll(async () => {
  await bus?.cleanup();
  await db?.drop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

const jwt = (roles: Role[]) =>
  signAccessToken({ secret: TEST_AUTH.secret, issuer: TEST_AUTH.issuer, audience: TEST_AUTH.audience, subject: "ops@example.com", roles, ttlSeconds: 600 });

async function call(method: string, path: string, options: { token?: string; roles?: Role[]; body?: unknown; csv?: string } = {}) {
  const token = options.token ?? (await jwt(options.roles ?? ["viewer", "editor", "operator"]));
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  let body: string | undefined;
  if (options.csv !== undefined) {
    headers["content-type"] = "text/csv";
    body = options.csv;
  } else if (options.body !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(options.body);
  }
  const res = await app.request(`${ROOT}${path}`, { method, headers, body });
  const buffer = Buffer.from(await res.arrayBuffer());
  const text = buffer.toString("utf8");
  let json: any;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, body: json, text, buffer, headers: res.headers };
}

async function ok(method: string, path: string, body?: unknown) {
  const res = await call(method, path, { body });
  expect(res.status, `${method} ${path}: ${res.text}`).toBeLessThan(300);
  return res.body;
}

const VARIABLES = [
  { name: "name", type: "text" },
  { name: "greeting", type: "text", default: "Hello" },
  { name: "seconds", type: "number", default: 3 },
  { name: "clip", type: "video" },
];

/** A template: a shared intro clip and outro voiceover, a per-row script and voiceover, a per-row clip (bound). */
async function template(): Promise<string> {
  const { pipeline } = await ok("POST", "/pipelines", { title: "Greetings" });
  await ok("PUT", `/pipelines/${pipeline.id}/variables`, { variables: VARIABLES });
  const nodes = [
    { id: "intro", title: "Intro", type: "asset", asset: { type: "video", url: "https://cdn.example.com/intro.mp4" } },
    { id: "outro", title: "Outro voice", type: "generate-voiceover", config: { provider: "local", script: "Thanks for watching, see you next week." } },
    { id: "script", title: "Script", type: "asset", asset: { type: "text", content: "{{greeting}} {{name}}! This takes {{seconds}} seconds." } },
    { id: "voice", title: "Voice", type: "generate-voiceover", inputs: { script: ["script"] }, config: { provider: "local" } },
    { id: "face", title: "Face", type: "asset", asset: { type: "video", url: "https://cdn.example.com/face.mp4", variable: "clip" } },
  ];
  for (const node of nodes) await ok("POST", `/pipelines/${pipeline.id}/nodes`, node);
  return pipeline.id;
}

const countOf = async (sql: string, params: unknown[] = []) => Number((await db.admin.query(sql, params)).rows[0].n);
const batchesOf = (pipelineId: string) => countOf(`SELECT count(*) AS n FROM video_production_batches WHERE pipeline_id = $1`, [pipelineId]);
const rowPipelines = () => countOf(`SELECT count(*) AS n FROM video_production_pipelines WHERE batch_id IS NOT NULL`);

describe("starting a batch", () => {
  it("refuses a CSV with bad rows whole, listing every problem, and creates nothing", async () => {
    const P = await template();
    const before = await rowPipelines();
    const csv = [
      "name,seconds,clip,extra",
      "Ada,3,https://cdn.example.com/ada.mp4,x",
      ",three,ftp://cdn.example.com/b.mp4,",
      "Grace,,,",
      "Linus,2.5,https://user:pw@cdn.example.com/c.mp4,",
    ].join("\n");
    const res = await call("POST", `/pipelines/${P}/batches`, { csv });
    expect(res.status, res.text).toBe(422);
    expect(res.body.error).toBe("4 of 4 rows have problems (8 in all); nothing was created");
    expect(res.body.problems).toEqual([
      { row: 1, column: "extra", message: '"extra" is not a variable of this pipeline (its variables: name, greeting, seconds, clip)' },
      { row: 2, column: "extra", message: expect.stringContaining('"extra" is not a variable') },
      { row: 2, column: "name", message: '"name" is empty and it has no default' },
      { row: 2, column: "seconds", message: '"seconds" must be a number, not "three"' },
      { row: 2, column: "clip", message: '"clip" (a video variable) must be an http:// or https:// URL' },
      { row: 3, column: "extra", message: expect.stringContaining('"extra" is not a variable') },
      { row: 4, column: "extra", message: expect.stringContaining('"extra" is not a variable') },
      { row: 4, column: "clip", message: '"clip" (a video variable) must not contain a user name or password' },
    ]);
    // A missing column for a variable without a default is a problem of every row.
    const missing = await call("POST", `/pipelines/${P}/batches`, { csv: "greeting\nHi\nHey\n" });
    expect(missing.status).toBe(422);
    expect(missing.body.problems).toEqual([
      { row: 1, column: "name", message: 'no "name" column, and it has no default' },
      { row: 2, column: "name", message: 'no "name" column, and it has no default' },
    ]);
    expect(await batchesOf(P)).toBe(0);
    expect(await rowPipelines()).toBe(before);
  });

  it("dry run: the estimate counts the shared work once and each row's own work per row; nothing is created", async () => {
    const P = await template();
    const rows = [{ name: "Ada" }, { name: "Grace Hopper", greeting: "Good morning" }, { name: "Linus", seconds: 12 }];
    const res = await call("POST", `/pipelines/${P}/batches`, { body: { rows, dryRun: true } });
    expect(res.status, res.text).toBe(200);
    expect(res.body.rows).toEqual([
      { index: 1, values: { name: "Ada" } },
      { index: 2, values: { name: "Grace Hopper", greeting: "Good morning" } },
      { index: 3, values: { name: "Linus", seconds: 12 } },
    ]);
    const voice = (script: string) =>
      estimateNodeCost({ id: "v", type: "generate-voiceover", inputs: {}, config: { provider: "local", script } } as EstimatedNode, new Map());
    const shared = voice("Thanks for watching, see you next week.");
    const own = [
      voice("Hello Ada! This takes 3 seconds."),
      voice("Good morning Grace Hopper! This takes 3 seconds."),
      voice("Hello Linus! This takes 12 seconds."),
    ];
    const { estimate } = res.body;
    expect(shared).toBeGreaterThan(0);
    expect(estimate.sharedNodeIds.sort()).toEqual(["intro", "outro"]);
    expect(estimate.rows).toBe(3);
    expect(estimate.shared).toBeCloseTo(shared, 6);
    expect(estimate.perRow).toBeCloseTo((own[0]! + own[1]! + own[2]!) / 3, 6);
    expect(estimate.total).toBeCloseTo(shared + own[0]! + own[1]! + own[2]!, 6);
    expect(estimate.saved).toBeCloseTo(shared * 2, 6);
    expect(estimate).toMatchObject({ maxCost: null, withinBudget: true });
    expect(await batchesOf(P)).toBe(0);

    // Over the request's budget (or the pipeline's): the run's over-budget answer, with the estimate.
    const over = await call("POST", `/pipelines/${P}/batches`, { body: { rows, maxCost: shared } });
    expect(over.status).toBe(422);
    expect(over.body.error).toMatch(/^Estimated cost \$[\d.]+ for 3 rows exceeds the budget \(maxCost\) of \$[\d.]+: shared work/);
    expect(over.body.estimate).toMatchObject({ rows: 3, withinBudget: false });
    await ok("PATCH", `/pipelines/${P}`, { config: { maxCost: shared } });
    expect((await call("POST", `/pipelines/${P}/batches`, { body: { rows, dryRun: true } })).status).toBe(422);
    expect(await batchesOf(P)).toBe(0);
  });

  it("creates a pipeline per row (values as defaults, media URLs in the bound assets), left out of GET /pipelines", async () => {
    const P = await template();
    const res = await call("POST", `/pipelines/${P}/batches`, {
      body: { rows: [{ name: "Ada", clip: "https://cdn.example.com/ada.mp4" }, { name: "Grace" }], concurrency: 2, outputNodeId: "voice" },
    });
    expect(res.status, res.text).toBe(201);
    const { batch } = res.body;
    expect(batch).toMatchObject({
      pipelineId: P,
      status: "running",
      concurrency: 2,
      outputNodeId: "voice",
      counts: { waiting: 2, running: 0, completed: 0, failed: 0, cancelled: 0 },
      cost: 0,
      costSaved: 0,
      finishedAt: null,
    });
    expect(batch.rows.map((r: any) => [r.index, r.status, r.values])).toEqual([
      [1, "waiting", { name: "Ada", clip: "https://cdn.example.com/ada.mp4" }],
      [2, "waiting", { name: "Grace" }],
    ]);
    const first = (await ok("GET", `/pipelines/${batch.rows[0].pipelineId}`)).pipeline;
    expect(first.variables.find((v: any) => v.name === "name")).toEqual({ name: "name", type: "text", default: "Ada" });
    expect(first.nodes.find((n: any) => n.id === "face").asset).toEqual({ type: "video", url: "https://cdn.example.com/ada.mp4", variable: "clip" });
    expect(first.nodes.find((n: any) => n.id === "script").asset.content).toBe("{{greeting}} {{name}}! This takes {{seconds}} seconds.");
    const second = (await ok("GET", `/pipelines/${batch.rows[1].pipelineId}`)).pipeline;
    expect(second.nodes.find((n: any) => n.id === "face").asset).toEqual({ type: "video", url: "https://cdn.example.com/face.mp4", variable: "clip" });

    const listed = (await ok("GET", "/pipelines?per=100")).pipelines.map((p: any) => p.id);
    expect(listed).toContain(P);
    expect(listed).not.toContain(batch.rows[0].pipelineId);
    expect((await ok("GET", "/pipelines?per=100&batch_rows=true")).pipelines.map((p: any) => p.id)).toContain(batch.rows[0].pipelineId);
    expect((await ok("GET", `/pipelines/${P}/batches`)).batches.map((b: any) => b.id)).toEqual([batch.id]);
    expect((await ok("GET", `/batches/${batch.id}`)).batch.rows).toHaveLength(2);
    expect((await call("GET", "/batches/no-such-batch")).status).toBe(404);
  });

  it("roles: a viewer key cannot start a batch, an operator key can, a revoked key is refused; viewers read", async () => {
    const P = await template();
    const body = { rows: [{ name: "Ada" }] };
    const viewerKey = (await ok("POST", "/api-keys", { name: "viewer", roles: ["viewer"] })).key;
    const operator = await ok("POST", "/api-keys", { name: "operator", roles: ["operator"] });
    expect((await call("POST", `/pipelines/${P}/batches`, { token: viewerKey, body })).status).toBe(403);
    expect((await call("POST", `/pipelines/${P}/batches`, { roles: ["viewer", "editor"], body })).status).toBe(403);
    const made = await call("POST", `/pipelines/${P}/batches`, { token: operator.key, body });
    expect(made.status, made.text).toBe(201);
    expect((await call("GET", `/batches/${made.body.batch.id}`, { token: viewerKey })).status).toBe(200);
    expect((await call("POST", `/batches/${made.body.batch.id}/cancel`, { token: viewerKey })).status).toBe(403);
    const limited = await ok("POST", "/api-keys", { name: "limited", roles: ["operator"], pipelines: [P] });
    const refused = await call("POST", `/pipelines/${P}/batches`, { token: limited.key, body });
    expect(refused.status).toBe(403);
    expect(refused.body.error).toMatch(/cannot start a batch/);
    await ok("DELETE", `/api-keys/${operator.api_key.id}`);
    const revoked = await call("POST", `/pipelines/${P}/batches`, { token: operator.key, body });
    expect(revoked.status).toBe(401);
    expect(await batchesOf(P)).toBe(1);
  });
});

describe("running a batch", () => {
  const deps = () => ({ reader: db.pools.reader, editor: db.pools.editor, bus: bus.bus, topology: bus.topology, logger, executeVerdictTimeoutMs: 200 });

  /** Records a row's run as the state-writer would: the output node completed, the run finished. */
  async function finishRowRun(row: { pipelineId: string; runId: string }, status: "completed" | "failed", cost: number, costSaved: number) {
    await createRun(db.pools.stateWriter, { id: row.runId, pipelineId: row.pipelineId, kind: "all", nodeIds: ["voice"] });
    const output = { type: "audio", s3Key: `pipelines/${row.pipelineId}/nodes/voice/j/output.m4a` };
    if (status === "completed") {
      await writeFile(join(scratch, "voice.m4a"), `audio of ${row.pipelineId}`);
      await createLocalStorage({ root: join(scratch, "storage") }).putFile(output.s3Key, join(scratch, "voice.m4a"));
    }
    await db.admin.query(`UPDATE video_production_nodes SET status = $3, output = $4::jsonb, metadata = $5::jsonb WHERE pipeline_id = $1 AND id = $2`, [
      row.pipelineId,
      "voice",
      status,
      status === "completed" ? JSON.stringify(output) : null,
      JSON.stringify(status === "failed" ? { error: "espeak-ng exited with 1" } : {}),
    ]);
    await finishRun(db.pools.stateWriter, { id: row.runId, status, summary: { totalCost: cost, costSaved } });
  }

  const rowsOf = async (id: string) => (await ok("GET", `/batches/${id}`)).batch;

  it("starts the first row alone, then the others up to the concurrency; records outcomes, totals and webhooks; zips the outputs", async () => {
    const P = await template();
    await db.admin.query(
      `INSERT INTO video_production_webhook_endpoints (id, pipeline_id, url, events, secret_ciphertext, created_by)
       VALUES ('wh1', $1, 'https://hooks.example.com/', ARRAY['row.finished', 'batch.finished'], '\\x00', 'dev')`,
      [P],
    );
    const rows = [{ name: "Ada" }, { name: "Grace" }, { name: "Linus" }, { name: "Edsger" }];
    const { batch } = await ok("POST", `/pipelines/${P}/batches`, { rows, concurrency: 2, outputNodeId: "voice" });

    await driveBatches(deps());
    let now = await rowsOf(batch.id);
    expect(now.rows.map((r: any) => r.status)).toEqual(["running", "waiting", "waiting", "waiting"]);
    await driveBatches(deps());
    expect((await rowsOf(batch.id)).rows.map((r: any) => r.status)).toEqual(["running", "waiting", "waiting", "waiting"]);

    // The first row fails: the rest start anyway, two at a time.
    await finishRowRun(now.rows[0], "failed", 0.001, 0);
    await driveBatches(deps());
    now = await rowsOf(batch.id);
    expect(now.rows.map((r: any) => r.status)).toEqual(["failed", "running", "running", "waiting"]);
    expect(now.rows[0]).toMatchObject({ error: "Voice: espeak-ng exited with 1", cost: 0.001, output: null });

    await finishRowRun(now.rows[1], "completed", 0.002, 0.004);
    await driveBatches(deps());
    now = await rowsOf(batch.id);
    expect(now.rows.map((r: any) => r.status)).toEqual(["failed", "completed", "running", "running"]);
    expect(now.rows[1].output).toEqual({ nodeId: "voice", url: `/v1/video_production/pipelines/${now.rows[1].pipelineId}/nodes/voice/output` });
    await finishRowRun(now.rows[2], "completed", 0.002, 0.004);
    await finishRowRun(now.rows[3], "completed", 0.002, 0.004);
    await driveBatches(deps());
    now = await rowsOf(batch.id);
    expect(now).toMatchObject({ status: "failed", counts: { completed: 3, failed: 1, waiting: 0, running: 0 }, cost: 0.007, costSaved: 0.012 });
    expect(now.finishedAt).not.toBeNull();

    const { rows: deliveries } = await db.admin.query(
      `SELECT event_type, payload FROM video_production_webhook_deliveries WHERE endpoint_id = 'wh1' ORDER BY created_at, event_key`,
    );
    expect(deliveries.map((d) => d.event_type).sort()).toEqual(["batch.finished", "row.finished", "row.finished", "row.finished", "row.finished"]);
    expect(deliveries.find((d) => d.event_type === "batch.finished")!.payload).toMatchObject({
      type: "batch.finished",
      data: { pipeline_id: P, batch: { id: batch.id, status: "failed", cost: 0.007, cost_saved: 0.012 } },
    });

    // The zip: one file per completed row, named by its index.
    const zip = await call("GET", `/batches/${batch.id}/outputs.zip`, { roles: ["viewer"] });
    expect(zip.status).toBe(200);
    expect(zip.headers.get("content-type")).toBe("application/zip");
    await writeFile(join(scratch, "out.zip"), zip.buffer);
    const { stdout } = await exec("zipinfo", ["-1", join(scratch, "out.zip")]);
    expect(stdout.trim().split("\n")).toEqual(["row-002.m4a", "row-003.m4a", "row-004.m4a"]);

    // Retry runs the failed row again; the batch is running until it ends.
    const retried = await ok("POST", `/batches/${batch.id}/retry`);
    expect(retried.batch).toMatchObject({ status: "running", finishedAt: null });
    expect(retried.batch.rows[0]).toMatchObject({ status: "waiting", error: null, runId: null });
    expect((await call("POST", `/batches/${batch.id}/retry`)).status).toBe(422);
  });

  it("starts no more rows once what they cost reaches the batch's maxCost", async () => {
    const P = await template();
    const rows = [{ name: "Ada" }, { name: "Grace" }, { name: "Linus" }];
    const { estimate } = await ok("POST", `/pipelines/${P}/batches`, { rows, dryRun: true });
    const { batch } = await ok("POST", `/pipelines/${P}/batches`, { rows, maxCost: estimate.total });
    await driveBatches(deps());
    await finishRowRun((await rowsOf(batch.id)).rows[0], "completed", estimate.total, 0);
    await driveBatches(deps());
    const now = await rowsOf(batch.id);
    expect(now.rows.map((r: any) => r.status)).toEqual(["completed", "cancelled", "cancelled"]);
    expect(now.rows[1].error).toMatch(/^the batch's budget \(maxCost [\d.]+\) is spent/);
    expect(now).toMatchObject({ status: "cancelled", counts: { completed: 1, cancelled: 2 } });
  });

  it("fails a running row whose pipeline was deleted", async () => {
    const P = await template();
    const { batch } = await ok("POST", `/pipelines/${P}/batches`, { rows: [{ name: "Ada" }, { name: "Grace" }] });
    await driveBatches(deps());
    const first = (await rowsOf(batch.id)).rows[0];
    expect(first.status).toBe("running");
    await ok("DELETE", `/pipelines/${first.pipelineId}`);
    await driveBatches(deps());
    expect((await rowsOf(batch.id)).rows.map((r: any) => [r.status, r.error])).toEqual([
      ["failed", "the row's pipeline was deleted"],
      ["running", null],
    ]);
  });

  it("cancels waiting rows (one, or the whole batch)", async () => {
    const P = await template();
    const { batch } = await ok("POST", `/pipelines/${P}/batches`, { rows: [{ name: "Ada" }, { name: "Grace" }, { name: "Linus" }] });
    const one = await ok("POST", `/batches/${batch.id}/rows/3/cancel`);
    expect(one.batch.rows.map((r: any) => r.status)).toEqual(["waiting", "waiting", "cancelled"]);
    expect((await call("POST", `/batches/${batch.id}/rows/3/cancel`)).status).toBe(422);
    expect((await call("POST", `/batches/${batch.id}/rows/9/cancel`)).status).toBe(404);
    const all = await ok("POST", `/batches/${batch.id}/cancel`);
    expect(all.batch.status).toBe("cancelled");
    expect(all.batch.rows.map((r: any) => r.status)).toEqual(["cancelled", "cancelled", "cancelled"]);
    await driveBatches(deps());
    expect((await rowsOf(batch.id)).finishedAt).not.toBeNull();
    expect((await call("POST", `/batches/${batch.id}/cancel`)).status).toBe(422);
  });
});
