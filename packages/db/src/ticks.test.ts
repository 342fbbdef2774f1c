import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type pg from "pg";
import { createTestDatabase, insertNodeFixture, insertPipelineFixture, type TestDatabase } from "../../testkit/src/db";
import { getNode } from "./reader";
import { completeNode } from "./state";
import { applyProgressTick, applyProgressTicks, createTickPool, tickPoolUrl } from "./ticks";

let t: TestDatabase;
let sw: pg.Pool;
let ticks: pg.Pool;
let n = 0;
let P: string;

beforeAll(async () => {
  t = await createTestDatabase();
  sw = t.pools.stateWriter;
  ticks = createTickPool({ url: t.urls.stateWriter, applicationName: "vp-test-ticks", max: 4, onError: () => {} });
});
afterAll(async () => {
  await ticks?.end();
  await t?.drop();
});
beforeEach(async () => {
  P = `k${++n}`;
  await insertPipelineFixture(t.admin, { id: P, metadata: { progress: { in_progress: 3, total: 3 }, totalCost: 1.5 } });
});

const video = { type: "video" as const, s3Key: "pipelines/p/nodes/n/j/output.mp4", duration: 3, size: 1000 };
const running = (id: string, attempt = 1) =>
  insertNodeFixture(t.admin, { pipelineId: P, id, status: "in_progress", metadata: { jobId: `j-${id}`, attempt, startedAt: "2026-01-01T00:00:00.000Z" } });
const tickOf = (id: string, percent: number, attempt = 1) => ({ pipelineId: P, nodeId: id, jobId: `j-${id}`, attempt, percent });

describe("createTickPool", () => {
  it("commits asynchronously on its own sessions only", async () => {
    expect((await ticks.query<{ synchronous_commit: string }>("SHOW synchronous_commit")).rows[0]!.synchronous_commit).toBe("off");
    expect((await sw.query<{ synchronous_commit: string }>("SHOW synchronous_commit")).rows[0]!.synchronous_commit).toBe("on");
    expect(tickPoolUrl("postgres://u@h:5432/db?options=-c%20statement_timeout%3D5000")).toContain(
      "options=-c+statement_timeout%3D5000+-c+synchronous_commit%3Doff",
    );
  });
});

describe("applyProgressTick (one statement)", () => {
  it("writes the holder's progress once, with the pipeline's metadata; the same percent again is 'already'", async () => {
    await running("a");
    const r = await applyProgressTick(ticks, tickOf("a", 42.5));
    expect(r).toMatchObject({
      outcome: "applied",
      node: { id: "a", pipeline_id: P, status: "in_progress", state_version: 1, metadata: { jobId: "j-a", attempt: 1, progress: 42.5 } },
      pipelineMetadata: { progress: { in_progress: 3, total: 3 }, totalCost: 1.5 },
    });
    // Only the columns an event needs.
    expect(Object.keys(r.node!).sort()).toEqual(["id", "metadata", "output", "pipeline_id", "state_version", "status", "type"]);
    const again = await applyProgressTick(ticks, tickOf("a", 42.5));
    expect(again).toMatchObject({ outcome: "already", node: { state_version: 1 }, pipelineMetadata: { totalCost: 1.5 } });
    const next = await applyProgressTick(ticks, tickOf("a", 50));
    expect(next).toMatchObject({ outcome: "applied", node: { state_version: 2, metadata: { progress: 50 } } });
    expect(await getNode(t.admin, P, "a")).toMatchObject({ state_version: 2, metadata: { progress: 50, startedAt: "2026-01-01T00:00:00.000Z" } });
  });

  it("rejects a tick of a superseded attempt with the reason, writing nothing", async () => {
    await running("a", 2);
    const r = await applyProgressTick(ticks, tickOf("a", 90, 1));
    expect(r).toMatchObject({
      outcome: "rejected",
      code: "stale",
      reason: "Progress of job j-a attempt 1 ignored (status: in_progress, job: j-a, attempt: 2)",
      node: { state_version: 0 },
    });
    expect((await getNode(t.admin, P, "a"))?.metadata).not.toHaveProperty("progress");
  });

  it("rejects a tick after the node completed", async () => {
    await running("a");
    await applyProgressTick(ticks, tickOf("a", 30));
    expect(await completeNode(sw, { pipelineId: P, nodeId: "a", jobId: "j-a", attempt: 1, output: video, cost: 0.1 })).toMatchObject({ outcome: "applied" });
    const late = await applyProgressTick(ticks, tickOf("a", 60));
    expect(late).toMatchObject({
      outcome: "rejected",
      code: "stale",
      reason: "Progress of job j-a attempt 1 ignored (status: completed, job: j-a, attempt: 1)",
    });
    expect(await getNode(t.admin, P, "a")).toMatchObject({ status: "completed", state_version: 2, metadata: { progress: 100 } });
  });

  it("answers not_found for a missing node or pipeline", async () => {
    expect(await applyProgressTick(ticks, tickOf("missing", 10))).toMatchObject({
      outcome: "rejected",
      code: "not_found",
      reason: "Node not found",
      node: null,
    });
    expect(await applyProgressTick(ticks, { ...tickOf("a", 10), pipelineId: "no-such-pipeline" })).toMatchObject({
      outcome: "rejected",
      code: "not_found",
      reason: "Pipeline not found",
      pipelineMetadata: {},
    });
  });

  it("waits for a node locked by a transition and then re-checks the guard on the committed row", async () => {
    await running("a");
    const holder = await sw.connect();
    try {
      await holder.query("BEGIN");
      await holder.query(`SELECT 1 FROM video_production_nodes WHERE pipeline_id = $1 AND id = 'a' FOR UPDATE`, [P]);
      const pending = applyProgressTick(ticks, tickOf("a", 20));
      await new Promise((r) => setTimeout(r, 150));
      await holder.query(`UPDATE video_production_nodes SET status = 'failed' WHERE pipeline_id = $1 AND id = 'a'`, [P]);
      await holder.query("COMMIT");
      expect(await pending).toMatchObject({ outcome: "rejected", code: "stale", node: { status: "failed" } });
    } finally {
      holder.release();
    }
  });
});

describe("applyProgressTicks (one multi-row statement)", () => {
  it("writes the ticks of several nodes at once and answers each in input order", async () => {
    await running("a");
    await running("b");
    await running("c", 2);
    await insertNodeFixture(t.admin, { pipelineId: P, id: "d", completed: true, metadata: { jobId: "j-d", attempt: 1 } });
    const results = await applyProgressTicks(ticks, [tickOf("a", 10), tickOf("b", 20), tickOf("c", 30, 1), tickOf("d", 40), tickOf("missing", 50)]);
    expect(results.map((r) => [r.outcome, r.code, r.node?.id, r.node?.state_version, r.node?.metadata?.progress])).toEqual([
      ["applied", undefined, "a", 1, 10],
      ["applied", undefined, "b", 1, 20],
      ["rejected", "stale", "c", 0, undefined],
      ["rejected", "stale", "d", 0, undefined],
      ["rejected", "not_found", undefined, undefined, undefined],
    ]);
    expect(results[0]!.pipelineMetadata).toEqual({ progress: { in_progress: 3, total: 3 }, totalCost: 1.5 });
    const again = await applyProgressTicks(ticks, [tickOf("a", 10), tickOf("b", 25)]);
    expect(again.map((r) => [r.outcome, r.node?.state_version])).toEqual([
      ["already", 1],
      ["applied", 2],
    ]);
  });

  it("does not wait for a locked row while holding the others: those commit, the locked one is written after", async () => {
    await running("a");
    await running("b");
    await running("c");
    const holder = await sw.connect();
    try {
      await holder.query("BEGIN");
      await holder.query(`SELECT 1 FROM video_production_nodes WHERE pipeline_id = $1 AND id = 'b' FOR UPDATE`, [P]);
      const pending = applyProgressTicks(ticks, [tickOf("a", 11), tickOf("b", 22), tickOf("c", 33)]);
      // a and c are committed while b is still locked (a multi-row UPDATE waiting on b would hold them).
      for (let i = 0; i < 50; i++) {
        const { rows } = await t.admin.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM video_production_nodes WHERE pipeline_id = $1 AND metadata ? 'progress'`,
          [P],
        );
        if (rows[0]!.n === 2) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      const { rows } = await t.admin.query<{ id: string }>(
        `SELECT id FROM video_production_nodes WHERE pipeline_id = $1 AND metadata ? 'progress' ORDER BY id`,
        [P],
      );
      expect(rows.map((r) => r.id)).toEqual(["a", "c"]);
      await holder.query("COMMIT");
      const results = await pending;
      expect(results.map((r) => [r.outcome, r.node?.metadata?.progress])).toEqual([
        ["applied", 11],
        ["applied", 22],
        ["applied", 33],
      ]);
    } finally {
      holder.release();
    }
  });

  it("refuses two ticks of one node in one statement", async () => {
    await running("a");
    await expect(applyProgressTicks(ticks, [tickOf("a", 1), tickOf("a", 2)])).rejects.toThrow(/two ticks of node a/);
  });
});
