/**
 * A batch's row stream over a real HTTP server against the real Postgres: rows are written as the batch driver
 * writes them (status, cost, output, updated_at), and clients read the stream's bytes.
 * - A client sees each row change; one that reconnects with its Last-Event-ID gets only the rows changed since.
 * - A 1,000-row batch kept busy (rows starting, their cost moving several times a second, rows completing) costs
 *   each client under 1 MB a minute: changed rows only, once per poll, whatever the number of writes.
 */
import { randomUUID } from "node:crypto";
import { get, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { serve, type ServerType } from "@hono/node-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLocalStorage } from "@vp/storage";
import { createLogger } from "@vp/telemetry";
import { createTestBus, createTestDatabase, insertPipelineFixture, TEST_AUTH, testToken, type TestBus, type TestDatabase } from "@vp/testkit";
import { createApp } from "../app";
import { createGatewayAuth } from "../auth";
import type { GatewayDeps } from "../deps";

const API = "/v1/video_production";

let db: TestDatabase;
let bus: TestBus;
let url: string;
let server: ServerType;
const clients: Array<{ close(): void }> = [];

beforeAll(async () => {
  db = await createTestDatabase();
  bus = await createTestBus();
  const logger = createLogger({ service: "gateway-test", level: "warn" });
  const deps: GatewayDeps = {
    reader: db.pools.reader,
    editor: db.pools.editor,
    bus: bus.bus,
    topology: bus.topology,
    storage: createLocalStorage({ root: "/nonexistent-unused" }),
    logger,
    auth: createGatewayAuth(
      { mode: "jwt", secret: TEST_AUTH.secret, issuer: TEST_AUTH.issuer, audience: TEST_AUTH.audience, devLogin: false, devLoginTtlSeconds: 3600 },
      logger,
    ),
    maxUploadBytes: 1024,
    executeVerdictTimeoutMs: 1000,
    corsOrigins: [],
    closing: new Promise(() => {}),
  };
  server = await new Promise<ServerType>((resolve) => {
    const s = serve({ fetch: createApp(deps).fetch, port: 0, hostname: "127.0.0.1" }, () => resolve(s));
  });
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const c of clients) c.close();
  await new Promise((r) => server?.close(r));
  await bus?.cleanup();
  await db?.drop();
});

/** A batch of `rows` waiting rows on a fresh pipeline. */
async function insertBatch(rows: number): Promise<{ batchId: string; pipelineId: string }> {
  const { id: pipelineId } = await insertPipelineFixture(db.admin, { title: "batch template" });
  const batchId = randomUUID();
  await db.admin.query("INSERT INTO video_production_batches (id, pipeline_id, created_by) VALUES ($1, $2, 'test')", [batchId, pipelineId]);
  await db.admin.query(
    `INSERT INTO video_production_batch_rows (batch_id, index, "values") SELECT $1, g, jsonb_build_object('name', 'Row ' || g) FROM generate_series(1, $2) g`,
    [batchId, rows],
  );
  return { batchId, pipelineId };
}

/** Rows changed as the batch driver changes them: updated_at moves with every write. */
async function setRows(batchId: string, indexes: number[], set: string, values: unknown[] = []) {
  await db.admin.query(`UPDATE video_production_batch_rows SET ${set}, updated_at = clock_timestamp() WHERE batch_id = $1 AND index = ANY($2::int[])`, [
    batchId,
    indexes,
    ...values,
  ]);
}

async function streamToken(batchId: string): Promise<string> {
  const response = await fetch(`${url}${API}/batches/${batchId}/events/token`, {
    method: "POST",
    headers: { authorization: `Bearer ${await testToken("viewer")}` },
  });
  expect(response.status).toBe(201);
  return ((await response.json()) as { token: string }).token;
}

interface Frame {
  event?: string;
  id?: string;
  data?: string;
}

/** A raw SSE client over node:http that keeps every byte it receives. */
function rawSse(target: string, headers: Record<string, string> = {}) {
  const chunks: Buffer[] = [];
  let bytes = 0;
  const request = get(target, { headers: { accept: "text/event-stream", ...headers } });
  const opened = new Promise<IncomingMessage>((resolve, reject) => {
    request.on("error", reject);
    request.on("response", (res) => {
      res.on("data", (chunk: Buffer) => {
        chunks.push(chunk);
        bytes += chunk.length;
      });
      res.on("error", () => undefined);
      resolve(res);
    });
  });
  request.on("error", () => undefined);
  const client = {
    opened,
    get bytes() {
      return bytes;
    },
    frames(): Frame[] {
      const text = Buffer.concat(chunks).toString("utf8");
      return text
        .slice(0, text.lastIndexOf("\n\n") + 2)
        .split("\n\n")
        .filter(Boolean)
        .map((block) => {
          const frame: Frame = {};
          for (const line of block.split("\n")) {
            if (line.startsWith(":")) continue;
            const i = line.indexOf(":");
            frame[line.slice(0, i) as keyof Frame] = line.slice(i + 1).trimStart();
          }
          return frame;
        })
        .filter((f) => f.event !== undefined);
    },
    rows: () =>
      client
        .frames()
        .filter((f) => f.event === "row")
        .map((f) => ({ id: f.id!, ...(JSON.parse(f.data!) as { index: number; status: string; cost: number; output: unknown; error: string | null }) })),
    /** Each row's latest state as the client has it. */
    latest() {
      const rows = new Map<number, { status: string; cost: number; output: unknown }>();
      for (const row of client.rows()) rows.set(row.index, row);
      return rows;
    },
    async waitFor(predicate: () => boolean, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      while (!predicate()) {
        if (Date.now() > deadline) throw new Error(`SSE condition not met in ${timeoutMs} ms; got ${bytes} bytes`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    close: () => request.destroy(),
  };
  clients.push(client);
  return client;
}

const eventsUrl = (batchId: string, token: string) => `${url}${API}/batches/${batchId}/events?token=${encodeURIComponent(token)}`;

describe("GET /batches/:id/events", () => {
  it("streams row changes; a client resuming with Last-Event-ID gets only the rows it missed", async () => {
    const { batchId, pipelineId } = await insertBatch(5);

    // A pipeline's stream token does not open a batch's stream, nor does a bearer token.
    const pipelineToken = (await (
      await fetch(`${url}${API}/pipelines/${pipelineId}/events/token`, { method: "POST", headers: { authorization: `Bearer ${await testToken("viewer")}` } })
    ).json()) as { token: string };
    expect((await fetch(eventsUrl(batchId, pipelineToken.token))).status).toBe(401);
    expect((await fetch(`${url}${API}/batches/${batchId}/events`, { headers: { authorization: `Bearer ${await testToken()}` } })).status).toBe(401);
    expect((await fetch(eventsUrl(randomUUID(), await streamToken(batchId)))).status).toBe(401);

    const first = rawSse(eventsUrl(batchId, await streamToken(batchId)));
    expect((await first.opened).headers["content-type"]).toBe("text/event-stream");
    // A new client starts with every row, the counts and the batch's status.
    await first.waitFor(() => first.frames().some((f) => f.event === "batch"));
    expect(first.rows().map((r) => [r.index, r.status])).toEqual([1, 2, 3, 4, 5].map((i) => [i, "waiting"]));
    const counts = first.frames().find((f) => f.event === "counts")!;
    expect(JSON.parse(counts.data!)).toEqual({ waiting: 5, running: 0, completed: 0, failed: 0, cancelled: 0, cost: 0, costSaved: 0 });
    expect(JSON.parse(first.frames().find((f) => f.event === "batch")!.data!)).toEqual({ status: "running" });

    await setRows(batchId, [1, 2], "status = 'running', cost = 0.25");
    await first.waitFor(() => first.rows().filter((r) => r.status === "running").length === 2);
    await first.waitFor(() => first.frames().some((f) => f.event === "counts" && JSON.parse(f.data!).running === 2));
    const seen = first.rows();
    expect(seen.slice(5).map((r) => [r.index, r.status, r.cost])).toEqual([
      [1, "running", 0.25],
      [2, "running", 0.25],
    ]);
    // Once those changes are surely committed everywhere, a quiet client's Last-Event-ID moves past them.
    await first.waitFor(() => first.frames().some((f) => f.event === "mark"));
    const lastEventId = first.frames().findLast((f) => f.id !== undefined)!.id!;
    expect(BigInt(lastEventId) > BigInt(seen.at(-1)!.id)).toBe(true);
    first.close();

    // Changes the client is not there for.
    const rowPipeline = (await insertPipelineFixture(db.admin, { title: "row 3" })).id;
    await setRows(batchId, [3], "status = 'completed', cost = 1.5, pipeline_id = $3, output = $4::jsonb", [
      rowPipeline,
      JSON.stringify({ nodeId: "voice", s3Key: "pipelines/x/nodes/voice/j/output.mp4", type: "audio" }),
    ]);
    await setRows(batchId, [4], "status = 'failed', error = 'the voiceover failed: no voice'");

    const resumed = rawSse(eventsUrl(batchId, await streamToken(batchId)), { "last-event-id": lastEventId });
    await resumed.waitFor(() => resumed.frames().some((f) => f.event === "batch"));
    expect(resumed.rows().map(({ id: _id, ...row }) => row)).toEqual([
      { index: 3, status: "completed", cost: 1.5, output: { url: `${API}/pipelines/${rowPipeline}/nodes/voice/output`, nodeId: "voice" }, error: null },
      { index: 4, status: "failed", cost: 0, output: null, error: "the voiceover failed: no voice" },
    ]);
    expect(JSON.parse(resumed.frames().find((f) => f.event === "counts")!.data!)).toMatchObject({ waiting: 1, running: 2, completed: 1, failed: 1, cost: 2 });
    // Ids never go back along the stream: the browser's Last-Event-ID is the furthest point it has.
    const ids = resumed.rows().map((r) => BigInt(r.id));
    expect(ids[1]! >= ids[0]! && ids[0]! >= BigInt(lastEventId)).toBe(true);

    // The end of the batch.
    await db.admin.query("UPDATE video_production_batches SET status = 'completed', finished_at = clock_timestamp() WHERE id = $1", [batchId]);
    await resumed.waitFor(() => resumed.frames().some((f) => f.event === "batch" && JSON.parse(f.data!).status === "completed"));
    resumed.close();
  });

  it("keeps a busy 1,000-row batch under 1 MB a minute per client", async () => {
    const ROWS = 1000;
    const { batchId } = await insertBatch(ROWS);
    const rowPipeline = (await insertPipelineFixture(db.admin, { title: "rows" })).id;
    const watchers = await Promise.all([0, 1, 2].map(async () => rawSse(eventsUrl(batchId, await streamToken(batchId)))));
    await Promise.all(watchers.map((w) => w.waitFor(() => w.frames().some((f) => f.event === "batch"))));
    const started = Date.now();

    // The driver at a pace well beyond a real batch's: 16 rows running, each one's cost written ten times a
    // second, and 20 rows a second completing while 20 more start.
    const DURATION_MS = 30_000;
    let next = 1;
    const running: number[] = [];
    let writes = 0;
    while (Date.now() - started < DURATION_MS) {
      const tick = Date.now();
      const done = running.length >= 16 ? running.splice(0, 2) : [];
      if (done.length) {
        await setRows(batchId, done, "status = 'completed', pipeline_id = $3, output = $4::jsonb", [
          rowPipeline,
          JSON.stringify({ nodeId: "out", s3Key: "k", type: "video" }),
        ]);
      }
      const starting = [];
      while (running.length + starting.length < 16 && next <= ROWS) starting.push(next++);
      if (starting.length) await setRows(batchId, starting, "status = 'running', cost = 0");
      running.push(...starting);
      await setRows(batchId, running, "cost = cost + 0.001");
      writes += done.length + starting.length + running.length;
      await new Promise((r) => setTimeout(r, Math.max(0, 100 - (Date.now() - tick))));
    }
    const elapsed = Date.now() - started;

    // Every client ends with the rows as they are.
    const { rows } = await db.admin.query<{ index: number; status: string; cost: string | null }>(
      "SELECT index, status, cost FROM video_production_batch_rows WHERE batch_id = $1",
      [batchId],
    );
    for (const w of watchers) {
      await w.waitFor(() => {
        const latest = w.latest();
        return rows.every((r) => latest.get(r.index)?.status === r.status && latest.get(r.index)?.cost === Number(r.cost ?? 0));
      });
    }
    const completed = rows.filter((r) => r.status === "completed").length;
    expect(completed).toBeGreaterThan(200);
    for (const w of watchers) {
      const perMinute = (w.bytes * 60_000) / elapsed;
      // Every byte counted, the first frames with all 1,000 rows included.
      expect(perMinute).toBeLessThan(1024 * 1024);
      // What the bound buys: far fewer row frames than row writes (several writes of a row within a poll are one frame).
      expect(w.rows().length - ROWS).toBeLessThan(writes / 3);
    }
  }, 90_000);
});
