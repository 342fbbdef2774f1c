import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, insertNodeFixture, insertPipelineFixture, type TestDatabase } from "../../testkit/src/db";
import {
  advanceWebhookScan,
  claimDueWebhookDeliveries,
  createWebhookEndpoint,
  deleteWebhookEndpoint,
  findUndeliveredEvents,
  getWebhookEndpoint,
  insertWebhookDeliveries,
  listWebhookDeliveries,
  listWebhookEndpoints,
  nodeFailureKey,
  recordWebhookAttempt,
  redeliverWebhook,
  runEventKey,
  WebhookLimitError,
  withWebhookScanLock,
  type ClaimedDelivery,
  type NewWebhookDelivery,
} from "./webhooks";

let t: TestDatabase;
const CIPHER = new Uint8Array(40).fill(9);

beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => {
  await t?.drop();
});

let endpoints = 0;
const endpoint = (pipelineId: string, events: string[], maxPerPipeline = 20) =>
  createWebhookEndpoint(t.pools.editor, {
    id: `wh-${++endpoints}`,
    pipelineId,
    url: "https://example.com/hook",
    events,
    secretCiphertext: CIPHER,
    createdBy: "dev",
    maxPerPipeline,
  });

const finishedRun = (pipelineId: string, id: string, finishedAt = "clock_timestamp()") =>
  t.admin.query(
    `INSERT INTO video_production_runs (id, pipeline_id, kind, node_ids, status, finished_at) VALUES ($1, $2, 'all', '[]', 'completed', ${finishedAt})`,
    [id, pipelineId],
  );
const failedNode = (pipelineId: string, id: string, jobId: string, completedAt = new Date()) =>
  insertNodeFixture(t.admin, { pipelineId, id, status: "failed", metadata: { jobId, error: "boom", completedAt: completedAt.toISOString() } });

/** One scan as the gateway makes it (payloads aside): candidates stored as deliveries. */
async function scan(): Promise<NewWebhookDelivery[]> {
  const stored = await withWebhookScanLock(t.pools.editor, async (tx) => {
    const found = await findUndeliveredEvents(tx);
    const deliveries = [
      ...found.runs.map((c) => ({ endpointId: c.endpointId, pipelineId: c.run.pipeline_id, eventType: "run.finished", eventKey: runEventKey(c.run.id) })),
      ...found.nodes.map((c) => ({
        endpointId: c.endpointId,
        pipelineId: c.pipelineId,
        eventType: "node.failed",
        eventKey: nodeFailureKey(c.nodeId, c.metadata),
      })),
    ].map((d) => ({ ...d, id: `msg-${d.endpointId}-${d.eventKey}`, payload: { type: d.eventType } }));
    const ids = new Set(await insertWebhookDeliveries(tx, deliveries));
    return deliveries.filter((d) => ids.has(d.id));
  });
  return stored ?? [];
}
const keysOf = (deliveries: NewWebhookDelivery[]) => deliveries.map((d) => `${d.endpointId} ${d.eventKey}`).sort();

describe("webhook endpoints", () => {
  it("are created, listed, fetched and deleted per pipeline, never showing the secret", async () => {
    await insertPipelineFixture(t.admin, { id: "p-ends" });
    const made = await endpoint("p-ends", ["run.finished", "node.failed"]);
    expect(made).toEqual({
      id: made.id,
      pipeline_id: "p-ends",
      url: "https://example.com/hook",
      events: ["run.finished", "node.failed"],
      created_by: "dev",
      created_at: expect.stringMatching(/Z$/),
    });
    expect(await listWebhookEndpoints(t.pools.editor, "p-ends")).toEqual([made]);
    expect(await getWebhookEndpoint(t.pools.editor, "p-ends", made.id)).toEqual(made);
    expect(await getWebhookEndpoint(t.pools.editor, "p-other", made.id)).toBeNull();
    expect(await deleteWebhookEndpoint(t.pools.editor, "p-other", made.id)).toBe(false);
    expect(await deleteWebhookEndpoint(t.pools.editor, "p-ends", made.id)).toBe(true);
    expect(await listWebhookEndpoints(t.pools.editor, "p-ends")).toEqual([]);
  });

  it("stop at the per-pipeline limit, also when created concurrently; an unknown pipeline is not found", async () => {
    await insertPipelineFixture(t.admin, { id: "p-limit" });
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => endpoint("p-limit", ["run.finished"], 3)));
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(3);
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === "rejected").map((r) => r.reason);
    expect(refused).toHaveLength(2);
    for (const error of refused) {
      expect(error).toBeInstanceOf(WebhookLimitError);
      expect(error.message).toMatch(/already has 3 webhook endpoints.*delete one first/);
    }
    await expect(endpoint("p-missing", ["run.finished"])).rejects.toThrow(/Pipeline not found/);
  });
});

describe("events become deliveries", () => {
  it("only what happened after the endpoint was created and what it wants, once each however often it is scanned", async () => {
    const P = "p-events";
    await insertPipelineFixture(t.admin, { id: P });
    await finishedRun(P, "r-before");
    await failedNode(P, "n-before", "j-before");
    const both = await endpoint(P, ["run.finished", "node.failed"]);
    const nodesOnly = await endpoint(P, ["node.failed"]);
    await finishedRun(P, "r-after");
    await t.admin.query(`INSERT INTO video_production_runs (id, pipeline_id, kind, node_ids) VALUES ('r-running', $1, 'all', '[]')`, [P]);
    await failedNode(P, "n-after", "j-1");
    await insertNodeFixture(t.admin, { pipelineId: P, id: "n-done", completed: true });

    expect(keysOf(await scan())).toEqual([`${both.id} node:n-after:j-1`, `${both.id} run:r-after`, `${nodesOnly.id} node:n-after:j-1`]);
    expect(await scan()).toEqual([]);
    // Two gateways at once: one scans, the other finds the lock taken and does nothing.
    let release!: () => void;
    const held = withWebhookScanLock(t.pools.editor, () => new Promise<string>((resolve) => (release = () => resolve("scanned"))));
    await new Promise((r) => setTimeout(r, 100));
    expect(await withWebhookScanLock(t.pools.editor, async () => "second")).toBeNull();
    release();
    expect(await held).toBe("scanned");

    // The same node failing again (a retry: a new job) is a new event; storing an event twice stores it once.
    await t.admin.query(`UPDATE video_production_nodes SET metadata = metadata || '{"jobId": "j-2"}' WHERE id = 'n-after'`);
    expect(keysOf(await scan())).toEqual([`${both.id} node:n-after:j-2`, `${nodesOnly.id} node:n-after:j-2`]);
    const again = { id: "msg-dup", endpointId: both.id, pipelineId: P, eventType: "run.finished", eventKey: runEventKey("r-after"), payload: {} };
    expect(await insertWebhookDeliveries(t.pools.editor, [again])).toEqual([]);
    // An endpoint deleted since the scan takes its events with it.
    expect(await insertWebhookDeliveries(t.pools.editor, [{ ...again, endpointId: "wh-gone", eventKey: "run:x" }])).toEqual([]);
  });

  it("scan_from trails the last complete scan by the margin, and moves only by more than a minute", async () => {
    const P = "p-scan";
    await insertPipelineFixture(t.admin, { id: P });
    const made = await endpoint(P, ["run.finished"]);
    const scanFrom = async () => (await t.admin.query(`SELECT scan_from FROM video_production_webhook_endpoints WHERE id = $1`, [made.id])).rows[0].scan_from;
    const created = await scanFrom();
    await advanceWebhookScan(t.pools.editor, new Date(created.getTime() + 10 * 60_000 + 30_000));
    expect(await scanFrom()).toEqual(created);
    await advanceWebhookScan(t.pools.editor, new Date(created.getTime() + 60 * 60_000));
    expect(await scanFrom()).toEqual(new Date(created.getTime() + 50 * 60_000));
    // Events before scan_from are not looked at again.
    await finishedRun(P, "r-old", `'${new Date(created.getTime() + 40 * 60_000).toISOString()}'`);
    await finishedRun(P, "r-new", `'${new Date(created.getTime() + 55 * 60_000).toISOString()}'`);
    expect(keysOf(await scan()).filter((k) => k.startsWith(made.id))).toEqual([`${made.id} run:r-new`]);
  });
});

describe("sending deliveries", () => {
  const P = "p-send";
  let endpointId: string;
  beforeAll(async () => {
    await insertPipelineFixture(t.admin, { id: P });
    endpointId = (await endpoint(P, ["run.finished"])).id;
    // The scans above queued deliveries: out of the way.
    await t.admin.query(`UPDATE video_production_webhook_deliveries SET status = 'delivered', next_attempt_at = NULL`);
  });

  let n = 0;
  async function queue(count: number): Promise<string[]> {
    const deliveries = Array.from({ length: count }, () => {
      const key = `run:s-${++n}`;
      return { id: `msg-s-${n}`, endpointId, pipelineId: P, eventType: "run.finished", eventKey: key, payload: { type: "run.finished", n } };
    });
    return insertWebhookDeliveries(t.pools.editor, deliveries);
  }
  const outcome = (d: ClaimedDelivery, over: Partial<Parameters<typeof recordWebhookAttempt>[1]> = {}) =>
    recordWebhookAttempt(t.pools.editor, {
      deliveryId: d.id,
      claim: d.claim,
      attempt: d.attempt,
      manual: d.manual,
      startedAt: new Date(),
      durationMs: 12,
      statusCode: 200,
      responseBody: "ok",
      next: { status: "delivered" },
      ...over,
    });
  const claimOnly = async (id: string, leaseMs = 60_000) => {
    // Earlier tests' deliveries are delivered or not due.
    const claimed = await claimDueWebhookDeliveries(t.pools.editor, { limit: 50, leaseMs });
    const mine = claimed.find((d) => d.id === id);
    if (!mine) throw new Error(`${id} was not due: ${JSON.stringify(claimed.map((d) => d.id))}`);
    return mine;
  };

  it("two gateways claiming at once take different deliveries, with what sending needs", async () => {
    const ids = await queue(6);
    const [a, b] = await Promise.all([
      claimDueWebhookDeliveries(t.pools.editor, { limit: 4, leaseMs: 60_000 }),
      claimDueWebhookDeliveries(t.pools.editor, { limit: 4, leaseMs: 60_000 }),
    ]);
    const taken = [...a, ...b];
    expect(taken.map((d) => d.id).sort()).toEqual([...ids].sort());
    expect(taken[0]).toMatchObject({
      endpointId,
      pipelineId: P,
      eventType: "run.finished",
      attempt: 1,
      scheduleAttempt: 1,
      manual: false,
      url: "https://example.com/hook",
    });
    expect(Buffer.from(taken[0]!.secretCiphertext)).toEqual(Buffer.from(CIPHER));
    expect(await claimDueWebhookDeliveries(t.pools.editor, { limit: 4, leaseMs: 60_000 })).toEqual([]);
    for (const d of taken) expect(await outcome(d)).toBe(true);
  });

  it("a failed attempt is retried on schedule; each attempt is in the log with what came back", async () => {
    const [id] = await queue(1);
    const first = await claimOnly(id!);
    expect(await outcome(first, { statusCode: 500, responseBody: "oops", next: { status: "pending", retryInMs: 0 } })).toBe(true);
    const second = await claimOnly(id!);
    expect(second).toMatchObject({ attempt: 2, scheduleAttempt: 2, manual: false });
    await outcome(second, { statusCode: undefined, responseBody: undefined, error: "connect ECONNREFUSED", next: { status: "pending", retryInMs: 60_000 } });
    let [listed] = (await listWebhookDeliveries(t.pools.editor, endpointId)).filter((d) => d.id === id);
    expect(listed).toMatchObject({ status: "pending", attempt_count: 2, finished_at: null, payload: { type: "run.finished" } });
    expect(Date.parse(listed!.next_attempt_at!)).toBeGreaterThan(Date.now() + 50_000);
    // Not due yet: nobody claims it.
    expect((await claimDueWebhookDeliveries(t.pools.editor, { limit: 50, leaseMs: 60_000 })).map((d) => d.id)).not.toContain(id);
    await t.admin.query(`UPDATE video_production_webhook_deliveries SET next_attempt_at = now() WHERE id = $1`, [id]);
    const third = await claimOnly(id!);
    await outcome(third, { statusCode: 204, responseBody: "" });
    [listed] = (await listWebhookDeliveries(t.pools.editor, endpointId)).filter((d) => d.id === id);
    expect(listed).toMatchObject({ status: "delivered", attempt_count: 3, next_attempt_at: null, finished_at: expect.stringMatching(/Z$/) });
    expect(listed!.attempts).toEqual([
      { attempt: 1, manual: false, started_at: expect.stringMatching(/Z$/), duration_ms: 12, status_code: 500, response_body: "oops", error: null },
      {
        attempt: 2,
        manual: false,
        started_at: expect.stringMatching(/Z$/),
        duration_ms: 12,
        status_code: null,
        response_body: null,
        error: "connect ECONNREFUSED",
      },
      { attempt: 3, manual: false, started_at: expect.stringMatching(/Z$/), duration_ms: 12, status_code: 204, response_body: "", error: null },
    ]);
  });

  it("an attempt whose gateway stopped is logged as such when its claim expires, and the late recorder changes nothing", async () => {
    const [id] = await queue(1);
    const lost = await claimOnly(id!, 1);
    await new Promise((r) => setTimeout(r, 20));
    const next = await claimOnly(id!);
    expect(next.attempt).toBe(2);
    expect(await outcome(lost, { statusCode: 500, next: { status: "pending", retryInMs: 0 } })).toBe(false);
    expect(await outcome(next)).toBe(true);
    const [listed] = (await listWebhookDeliveries(t.pools.editor, endpointId)).filter((d) => d.id === id);
    expect(listed!.status).toBe("delivered");
    expect(listed!.attempts.map((a) => [a.attempt, a.status_code, a.duration_ms, a.error])).toEqual([
      [1, null, null, "no outcome recorded: the gateway stopped during this attempt (the receiver may have got it)"],
      [2, 200, 12, null],
    ]);
  });

  it("redelivery by hand: refused while an attempt is in flight, then a new schedule whose first attempt is marked manual", async () => {
    const [id] = await queue(1);
    const first = await claimOnly(id!);
    expect(await redeliverWebhook(t.pools.editor, endpointId, id!)).toBe("in_flight");
    await outcome(first, { statusCode: 410, next: { status: "failed" } });
    expect((await listWebhookDeliveries(t.pools.editor, endpointId)).find((d) => d.id === id)).toMatchObject({ status: "failed", next_attempt_at: null });
    const queued = await redeliverWebhook(t.pools.editor, endpointId, id!);
    expect(queued).toMatchObject({ id, status: "pending", attempt_count: 1, finished_at: null });
    const manual = await claimOnly(id!);
    expect(manual).toMatchObject({ attempt: 2, scheduleAttempt: 1, manual: true });
    await outcome(manual, { statusCode: 500, next: { status: "pending", retryInMs: 0 } });
    expect(await claimOnly(id!)).toMatchObject({ attempt: 3, scheduleAttempt: 2, manual: false });
    expect(await redeliverWebhook(t.pools.editor, endpointId, "msg-unknown")).toBe("not_found");
    expect(await redeliverWebhook(t.pools.editor, "wh-other", id!)).toBe("not_found");
  });
});
