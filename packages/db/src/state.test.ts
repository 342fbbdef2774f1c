import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type pg from "pg";
import { createTestDatabase, insertNodeFixture, insertPipelineFixture, type TestDatabase } from "../../testkit/src/db";
import { getNode, getPipelineRow } from "./reader";
import { claimQueued, claimRunning, recordHeartbeat, completeNode, failNode, patchNodeMetadata, recordProgress, recordProviderJob } from "./state";

const ISO_Z = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

let t: TestDatabase;
let sw: pg.Pool;
let n = 0;
let P: string;

beforeAll(async () => {
  t = await createTestDatabase();
  sw = t.pools.stateWriter;
});
afterAll(async () => {
  await t?.drop();
});
beforeEach(async () => {
  P = `p${++n}`;
  await insertPipelineFixture(t.admin, { id: P });
});

const video = { type: "video" as const, s3Key: "pipelines/p/nodes/n/j/output.mp4", duration: 3, size: 1000 };

describe("claimQueued", () => {
  it("pending -> queued, then the same jobId is 'already', another jobId is not_ready", async () => {
    await insertNodeFixture(t.admin, { pipelineId: P, id: "a", metadata: { error: "old failure", cost: 0.2 } });
    const first = await claimQueued(sw, { pipelineId: P, nodeId: "a", jobId: "j1" });
    expect(first.outcome).toBe("applied");
    expect(first.node?.status).toBe("queued");
    expect(first.node?.metadata).toMatchObject({ jobId: "j1", attempt: 0, cost: 0.2 });
    expect(first.node?.metadata?.queuedAt).toMatch(ISO_Z);
    expect(first.node?.metadata).not.toHaveProperty("error");
    expect(first.node?.state_version).toBe(1);

    const again = await claimQueued(sw, { pipelineId: P, nodeId: "a", jobId: "j1" });
    expect(again).toMatchObject({ outcome: "already", node: { status: "queued", state_version: 1 } });

    const other = await claimQueued(sw, { pipelineId: P, nodeId: "a", jobId: "j2" });
    expect(other).toMatchObject({ outcome: "rejected", code: "not_ready", reason: "Node not ready (status: queued)" });
    expect((await getNode(t.admin, P, "a"))?.metadata?.jobId).toBe("j1");
  });

  it("works on a node whose metadata is NULL", async () => {
    await insertNodeFixture(t.admin, { pipelineId: P, id: "a", metadata: null });
    const r = await claimQueued(sw, { pipelineId: P, nodeId: "a", jobId: "j1" });
    expect(r.outcome).toBe("applied");
    expect(r.node?.metadata).toMatchObject({ jobId: "j1", attempt: 0 });
  });

  it("is 'already' for the same job after it ran, not_ready for a completed node of another job", async () => {
    await insertNodeFixture(t.admin, { pipelineId: P, id: "a", traits: ["completed"] });
    await t.admin.query(`UPDATE video_production_nodes SET metadata = metadata || '{"jobId": "j1"}' WHERE pipeline_id = $1`, [P]);
    expect((await claimQueued(sw, { pipelineId: P, nodeId: "a", jobId: "j1" })).outcome).toBe("already");
    expect(await claimQueued(sw, { pipelineId: P, nodeId: "a", jobId: "j2" })).toMatchObject({
      outcome: "rejected",
      code: "not_ready",
      reason: "Node not ready (status: completed)",
    });
  });

  it("rejects a missing node or pipeline with not_found", async () => {
    expect(await claimQueued(sw, { pipelineId: P, nodeId: "nope", jobId: "j" })).toMatchObject({
      outcome: "rejected",
      code: "not_found",
      reason: "Node not found",
      node: null,
    });
    expect(await claimQueued(sw, { pipelineId: "nope", nodeId: "nope", jobId: "j" })).toMatchObject({
      outcome: "rejected",
      code: "not_found",
      node: null,
      pipelineMetadata: {},
    });
  });
});

describe("claimRunning", () => {
  beforeEach(async () => {
    await insertNodeFixture(t.admin, { pipelineId: P, id: "a" });
    await claimQueued(sw, { pipelineId: P, nodeId: "a", jobId: "j1" });
  });

  it("queued -> in_progress; a redelivery after a crash takes over with the next attempt and keeps startedAt", async () => {
    const r1 = await claimRunning(sw, { pipelineId: P, nodeId: "a", jobId: "j1", attempt: 1, claimId: "c1" });
    expect(r1.outcome).toBe("applied");
    expect(r1.node?.status).toBe("in_progress");
    expect(r1.node?.metadata).toMatchObject({ jobId: "j1", attempt: 1, retries: 0, delivery: 1, claimId: "c1" });
    const startedAt = r1.node?.metadata?.startedAt;
    expect(startedAt).toMatch(ISO_Z);
    expect(r1.node?.metadata?.heartbeatAt).toMatch(ISO_Z);

    // The same delivery asking again (a lost reply) is idempotent.
    expect((await claimRunning(sw, { pipelineId: P, nodeId: "a", jobId: "j1", attempt: 1, claimId: "c1" })).outcome).toBe("already");

    const r2 = await claimRunning(sw, { pipelineId: P, nodeId: "a", jobId: "j1", attempt: 2, claimId: "c2" });
    expect(r2.outcome).toBe("applied");
    expect(r2.node?.metadata).toMatchObject({ attempt: 2, retries: 1, startedAt, claimId: "c2" });
    expect(r2.node?.state_version).toBe(3);

    // JetStream's delivery count is not trusted for order: any other delivery takes over with attempt 3,
    // and the results of attempts 1 and 2 are now stale.
    const relabelled = await claimRunning(sw, { pipelineId: P, nodeId: "a", jobId: "j1", attempt: 1, claimId: "c3" });
    expect(relabelled.outcome).toBe("applied");
    expect(relabelled.node?.metadata).toMatchObject({ attempt: 3, retries: 2, delivery: 1 });
    const late = await completeNode(sw, { pipelineId: P, nodeId: "a", jobId: "j1", attempt: 2, output: video, cost: 0 });
    expect(late).toMatchObject({ outcome: "rejected", code: "stale" });

    const otherJob = await claimRunning(sw, { pipelineId: P, nodeId: "a", jobId: "j2", attempt: 1, claimId: "c4" });
    expect(otherJob).toMatchObject({ outcome: "rejected", code: "stale" });
    expect((await getNode(t.admin, P, "a"))?.state_version).toBe(4);
  });

  it("numbers attempts itself, whatever delivery count the first claim carries", async () => {
    const r = await claimRunning(sw, { pipelineId: P, nodeId: "a", jobId: "j1", attempt: 3, claimId: "c1" });
    expect(r.node?.metadata).toMatchObject({ attempt: 1, retries: 0, delivery: 3 });
  });

  it("records heartbeats of the attempt holding the node only", async () => {
    await claimRunning(sw, { pipelineId: P, nodeId: "a", jobId: "j1", attempt: 1, claimId: "c1" });
    await t.admin.query(
      `UPDATE video_production_nodes SET metadata = metadata || '{"heartbeatAt": "2000-01-01T00:00:00.000Z"}' WHERE pipeline_id = $1 AND id = 'a'`,
      [P],
    );
    expect((await recordHeartbeat(sw, { pipelineId: P, nodeId: "a", jobId: "j1", attempt: 2 })).outcome).toBe("rejected");
    expect((await getNode(t.admin, P, "a"))?.metadata?.heartbeatAt).toBe("2000-01-01T00:00:00.000Z");
    const beat = await recordHeartbeat(sw, { pipelineId: P, nodeId: "a", jobId: "j1", attempt: 1 });
    expect(beat.outcome).toBe("applied");
    expect(Date.parse(String(beat.node?.metadata?.heartbeatAt))).toBeGreaterThan(Date.now() - 60_000);
  });

  it("rejects a completed node of the same job with already_done, failed/pending with stale", async () => {
    await claimRunning(sw, { pipelineId: P, nodeId: "a", jobId: "j1", attempt: 1 });
    await completeNode(sw, { pipelineId: P, nodeId: "a", jobId: "j1", attempt: 1, output: video, cost: 0.1 });
    expect(await claimRunning(sw, { pipelineId: P, nodeId: "a", jobId: "j1", attempt: 2 })).toMatchObject({
      outcome: "rejected",
      code: "already_done",
    });

    await insertNodeFixture(t.admin, { pipelineId: P, id: "b" });
    expect(await claimRunning(sw, { pipelineId: P, nodeId: "b", jobId: "j1", attempt: 1 })).toMatchObject({
      outcome: "rejected",
      code: "stale",
    });
  });
});

describe("recordProgress / completeNode / failNode", () => {
  beforeEach(async () => {
    await insertNodeFixture(t.admin, { pipelineId: P, id: "a" });
    await claimQueued(sw, { pipelineId: P, nodeId: "a", jobId: "j1" });
    await claimRunning(sw, { pipelineId: P, nodeId: "a", jobId: "j1", attempt: 1 });
    await claimRunning(sw, { pipelineId: P, nodeId: "a", jobId: "j1", attempt: 2 });
  });

  it("records progress of the current attempt only", async () => {
    const ok = await recordProgress(sw, { pipelineId: P, nodeId: "a", jobId: "j1", attempt: 2, percent: 42.5 });
    expect(ok.outcome).toBe("applied");
    expect(ok.node?.metadata?.progress).toBe(42.5);
    const stale = await recordProgress(sw, { pipelineId: P, nodeId: "a", jobId: "j1", attempt: 1, percent: 90 });
    expect(stale).toMatchObject({ outcome: "rejected", code: "stale" });
    expect((await getNode(t.admin, P, "a"))?.metadata?.progress).toBe(42.5);
  });

  it("rejects the late result of a superseded attempt and changes nothing", async () => {
    const before = await getNode(t.admin, P, "a");
    const late = await completeNode(sw, { pipelineId: P, nodeId: "a", jobId: "j1", attempt: 1, output: video, cost: 5 });
    expect(late).toMatchObject({ outcome: "rejected", code: "stale" });
    expect(late.reason).toMatch(/attempt 1.*attempt 2/);
    expect(await getNode(t.admin, P, "a")).toEqual(before);
    const pipeline = await getPipelineRow(t.admin, P);
    expect(pipeline?.metadata.totalCost).toBe(0);
  });

  it("completes once; the same completion again is 'already'; output is merged into a NULL column", async () => {
    const done = await completeNode(sw, { pipelineId: P, nodeId: "a", jobId: "j1", attempt: 2, output: video, cost: 0.25 });
    expect(done.outcome).toBe("applied");
    expect(done.node).toMatchObject({ status: "completed", output: video });
    expect(done.node?.metadata).toMatchObject({ cost: 0.25, progress: 100, jobId: "j1", attempt: 2, retries: 1 });
    expect(done.node?.metadata?.completedAt).toMatch(ISO_Z);
    const again = await completeNode(sw, { pipelineId: P, nodeId: "a", jobId: "j1", attempt: 2, output: video, cost: 0.25 });
    expect(again.outcome).toBe("already");
    expect(again.node?.state_version).toBe(done.node?.state_version);
    expect(await completeNode(sw, { pipelineId: P, nodeId: "a", jobId: "j9", attempt: 1, output: video, cost: 1 })).toMatchObject({
      outcome: "rejected",
      code: "stale",
    });
  });

  it("fails the current attempt; again is 'already'; a non-final failure of an old attempt is stale", async () => {
    const old = await failNode(sw, { pipelineId: P, nodeId: "a", jobId: "j1", attempt: 1, error: "boom" });
    expect(old).toMatchObject({ outcome: "rejected", code: "stale" });
    const failed = await failNode(sw, { pipelineId: P, nodeId: "a", jobId: "j1", attempt: 2, error: "boom" });
    expect(failed.outcome).toBe("applied");
    expect(failed.node).toMatchObject({ status: "failed", metadata: { error: "boom" } });
    expect(failed.node?.metadata?.completedAt).toMatch(ISO_Z);
    expect(failed.pipelineMetadata.progress).toMatchObject({ failed: 1, total: 1, in_progress: 0 });
    expect((await failNode(sw, { pipelineId: P, nodeId: "a", jobId: "j1", attempt: 2, error: "boom" })).outcome).toBe("already");
    // A failed node cannot be completed by a late result.
    expect((await completeNode(sw, { pipelineId: P, nodeId: "a", jobId: "j1", attempt: 2, output: video, cost: 1 })).outcome).toBe("rejected");
  });

  it("a final failure fails regardless of attempt", async () => {
    const r = await failNode(sw, { pipelineId: P, nodeId: "a", jobId: "j1", attempt: 1, error: "gave up", final: true });
    expect(r.outcome).toBe("applied");
    expect(r.node?.status).toBe("failed");
  });
});

describe("failNode from queued", () => {
  it("fails a queued node of the same job, not of another job", async () => {
    await insertNodeFixture(t.admin, { pipelineId: P, id: "a" });
    await claimQueued(sw, { pipelineId: P, nodeId: "a", jobId: "j1" });
    expect((await failNode(sw, { pipelineId: P, nodeId: "a", jobId: "j2", attempt: 1, error: "x" })).outcome).toBe("rejected");
    const r = await failNode(sw, { pipelineId: P, nodeId: "a", jobId: "j1", attempt: 1, error: "poison" });
    expect(r).toMatchObject({ outcome: "applied", node: { status: "failed", metadata: { error: "poison" } } });
    // Retrying the node (pending again, a new job) drops the old error.
    await t.admin.query(`UPDATE video_production_nodes SET status = 'pending' WHERE pipeline_id = $1`, [P]);
    const again = await claimQueued(sw, { pipelineId: P, nodeId: "a", jobId: "j3" });
    expect(again.node?.metadata).not.toHaveProperty("error");
    expect(again.node?.metadata).not.toHaveProperty("completedAt");
  });
});

describe("pipeline metadata", () => {
  it("stays exact when many nodes of one pipeline change status at once on separate connections", async () => {
    // Each transition recounts in its UPDATE's statement; the pipeline's lock orders them, so no count is lost.
    const ids = Array.from({ length: 24 }, (_, i) => `c${i}`);
    for (const id of ids) await insertNodeFixture(t.admin, { pipelineId: P, id });
    await Promise.all(
      ids.map(async (id, i) => {
        expect((await claimQueued(sw, { pipelineId: P, nodeId: id, jobId: `j${id}` })).outcome).toBe("applied");
        expect((await claimRunning(sw, { pipelineId: P, nodeId: id, jobId: `j${id}`, attempt: 1 })).outcome).toBe("applied");
        const done =
          i % 3 === 0
            ? await failNode(sw, { pipelineId: P, nodeId: id, jobId: `j${id}`, attempt: 1, error: "boom" })
            : await completeNode(sw, { pipelineId: P, nodeId: id, jobId: `j${id}`, attempt: 1, output: video, cost: 0.01 });
        expect(done.outcome).toBe("applied");
      }),
    );
    const stored = await getPipelineRow(t.admin, P);
    expect(stored?.metadata.progress).toEqual({ completed: 16, in_progress: 0, pending: 0, failed: 8, queued: 0, cancelled: 0, total: 24 });
    expect(stored?.metadata.totalCost).toBeCloseTo(0.16, 10);
  });

  it("counts nodes by status and sums their cost after every status change", async () => {
    await insertNodeFixture(t.admin, { pipelineId: P, id: "done", traits: ["completed"] }); // cost 0.05
    await insertNodeFixture(t.admin, { pipelineId: P, id: "a" });
    await insertNodeFixture(t.admin, { pipelineId: P, id: "b" });
    await insertNodeFixture(t.admin, { pipelineId: P, id: "c", status: "cancelled" });

    const q = await claimQueued(sw, { pipelineId: P, nodeId: "a", jobId: "ja" });
    expect(q.pipelineMetadata.progress).toEqual({
      completed: 1,
      in_progress: 0,
      pending: 1,
      failed: 0,
      queued: 1,
      cancelled: 1,
      total: 4,
    });
    await claimRunning(sw, { pipelineId: P, nodeId: "a", jobId: "ja", attempt: 1 });
    const p = await recordProgress(sw, { pipelineId: P, nodeId: "a", jobId: "ja", attempt: 1, percent: 50 });
    expect(p.pipelineMetadata.progress).toMatchObject({ in_progress: 1, queued: 0 });
    const c = await completeNode(sw, { pipelineId: P, nodeId: "a", jobId: "ja", attempt: 1, output: video, cost: 0.1 });
    expect(c.pipelineMetadata.progress).toEqual({
      completed: 2,
      in_progress: 0,
      pending: 1,
      failed: 0,
      queued: 0,
      cancelled: 1,
      total: 4,
    });
    expect(c.pipelineMetadata.totalCost).toBeCloseTo(0.15, 10);
    // Other pipeline metadata keys survive (partial write).
    expect(c.pipelineMetadata.estimatedTotalCost).toBe(0);
    const stored = await getPipelineRow(t.admin, P);
    expect(stored?.metadata).toEqual(c.pipelineMetadata);
  });
});

describe("patchNodeMetadata", () => {
  it("merges into NULL metadata, keeps other keys, bumps state_version, never nulls the column", async () => {
    await insertNodeFixture(t.admin, { pipelineId: P, id: "a", metadata: null });
    const r1 = await patchNodeMetadata(sw, P, "a", { x: 1 });
    expect(r1.node).toMatchObject({ metadata: { x: 1 }, state_version: 1 });
    const r2 = await patchNodeMetadata(sw, P, "a", { y: null, z: { deep: true } });
    expect(r2.node).toMatchObject({ metadata: { x: 1, y: null, z: { deep: true } }, state_version: 2 });
    expect((await patchNodeMetadata(sw, P, "missing", { x: 1 })).code).toBe("not_found");
  });
});

describe("recordProviderJob", () => {
  const base = { jobId: "j1", provider: "heygen" };
  beforeEach(async () => {
    await insertNodeFixture(t.admin, { pipelineId: P, id: "a", type: "talking-head", metadata: { cost: 1 } });
    await claimQueued(sw, { pipelineId: P, nodeId: "a", jobId: "j1" });
    await claimRunning(sw, { pipelineId: P, nodeId: "a", jobId: "j1", attempt: 1 });
  });

  it("records creating, then the id once; the same id again is 'already', another id or a new create is a conflict", async () => {
    const creating = await recordProviderJob(sw, {
      pipelineId: P,
      nodeId: "a",
      ...base,
      attempt: 1,
      phase: "creating",
      clientRef: "vp-j1",
      estimatedCost: 2.5,
    });
    expect(creating.outcome).toBe("applied");
    expect(creating.node?.metadata).toMatchObject({
      jobId: "j1",
      attempt: 1,
      cost: 1,
      provider: "heygen",
      estimatedCost: 2.5,
      providerJob: { provider: "heygen", phase: "creating", clientRef: "vp-j1", attempt: 1 },
    });
    expect((creating.node!.metadata!.providerJob as { at: string }).at).toMatch(ISO_Z);
    expect(creating.node?.metadata).not.toHaveProperty("providerJobId");
    // A caller that lost the reply asks again.
    expect((await recordProviderJob(sw, { pipelineId: P, nodeId: "a", ...base, attempt: 1, phase: "creating", clientRef: "vp-j1" })).outcome).toBe("already");

    const created = await recordProviderJob(sw, {
      pipelineId: P,
      nodeId: "a",
      ...base,
      attempt: 1,
      phase: "created",
      providerJobId: "v-1",
      clientRef: "vp-j1",
    });
    expect(created.outcome).toBe("applied");
    expect(created.node?.metadata).toMatchObject({ providerJobId: "v-1", estimatedCost: 2.5, providerJob: { phase: "created", id: "v-1" } });
    const version = created.node!.state_version;

    expect((await recordProviderJob(sw, { pipelineId: P, nodeId: "a", ...base, attempt: 1, phase: "created", providerJobId: "v-1" })).outcome).toBe("already");
    expect(await recordProviderJob(sw, { pipelineId: P, nodeId: "a", ...base, attempt: 1, phase: "created", providerJobId: "v-2" })).toMatchObject({
      outcome: "rejected",
      code: "conflict",
    });
    // A redelivered attempt may not start another paid job either: it must resume v-1.
    await claimRunning(sw, { pipelineId: P, nodeId: "a", jobId: "j1", attempt: 2 });
    const again = await recordProviderJob(sw, { pipelineId: P, nodeId: "a", ...base, attempt: 2, phase: "creating" });
    expect(again).toMatchObject({ outcome: "rejected", code: "conflict" });
    expect(again.reason).toContain("v-1");
    const row = await getNode(t.admin, P, "a");
    expect(row?.metadata).toMatchObject({ providerJobId: "v-1", attempt: 2 });
    expect(row?.state_version).toBe(version + 1); // only the second claim wrote
  });

  it("only the attempt holding the node may record; not after completion, not for another job", async () => {
    await claimRunning(sw, { pipelineId: P, nodeId: "a", jobId: "j1", attempt: 2 });
    const old = await recordProviderJob(sw, { pipelineId: P, nodeId: "a", ...base, attempt: 1, phase: "created", providerJobId: "v-9" });
    expect(old).toMatchObject({ outcome: "rejected", code: "stale" });
    const other = await recordProviderJob(sw, { pipelineId: P, nodeId: "a", ...base, jobId: "j2", attempt: 2, phase: "creating" });
    expect(other).toMatchObject({ outcome: "rejected", code: "stale" });
    await completeNode(sw, { pipelineId: P, nodeId: "a", jobId: "j1", attempt: 2, output: video, cost: 0.1 });
    const late = await recordProviderJob(sw, { pipelineId: P, nodeId: "a", ...base, attempt: 2, phase: "created", providerJobId: "v-9" });
    expect(late).toMatchObject({ outcome: "rejected", code: "stale" });
    expect((await getNode(t.admin, P, "a"))?.metadata).not.toHaveProperty("providerJobId");
  });

  it("a refused create can be tried again by the next attempt; a new job starts without the old provider job", async () => {
    await recordProviderJob(sw, { pipelineId: P, nodeId: "a", ...base, attempt: 1, phase: "creating", estimatedCost: 1 });
    const refused = await recordProviderJob(sw, { pipelineId: P, nodeId: "a", ...base, attempt: 1, phase: "refused" });
    expect(refused.node?.metadata).toMatchObject({ providerJob: { phase: "refused", attempt: 1 }, estimatedCost: 1 });
    await claimRunning(sw, { pipelineId: P, nodeId: "a", jobId: "j1", attempt: 2 });
    expect((await recordProviderJob(sw, { pipelineId: P, nodeId: "a", ...base, attempt: 2, phase: "creating" })).outcome).toBe("applied");
    const created = await recordProviderJob(sw, { pipelineId: P, nodeId: "a", ...base, attempt: 2, phase: "created", providerJobId: "v-3" });
    expect(created.node?.metadata).toMatchObject({ providerJobId: "v-3", providerJob: { attempt: 2, phase: "created" } });
    expect(await recordProviderJob(sw, { pipelineId: P, nodeId: "a", ...base, attempt: 2, phase: "created" })).toMatchObject({ code: "conflict" });

    await failNode(sw, { pipelineId: P, nodeId: "a", jobId: "j1", attempt: 2, error: "x", final: true });
    await t.admin.query(`UPDATE video_production_nodes SET status = 'pending' WHERE pipeline_id = $1 AND id = 'a'`, [P]);
    const next = await claimQueued(sw, { pipelineId: P, nodeId: "a", jobId: "j2" });
    expect(next.node?.metadata).toMatchObject({ jobId: "j2", cost: 1 });
    for (const key of ["provider", "providerJobId", "providerJob", "estimatedCost"]) expect(next.node?.metadata).not.toHaveProperty(key);
  });
});
