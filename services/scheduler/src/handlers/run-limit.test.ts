/**
 * Regression for bench/runs.bench.ts: a 1,000-node wide run sent its whole first wave of claims to the
 * state-writer at once; it applies a pipeline's transitions one at a time, so the last claims waited past the
 * request timeout and their members were left without a job. The coordinator now keeps at most
 * MAX_TRANSITIONS_IN_FLIGHT transitions of a pipeline pending; the run still dispatches every member.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import type { JobMessage, RunVerdict, TransitionReply, TransitionRequest } from "@vp/contracts";
import type { ConsumeContext } from "@vp/bus";
import { claimQueued, createRun, finishRun, toSerializedNode, toSerializedRun } from "@vp/db";
import { createTestDatabase, insertNodeFixture, insertPipelineFixture, type TestDatabase } from "@vp/testkit";
import { createLogger } from "@vp/telemetry";
import { createRunCoordinator, LAUNCH_CHUNK, MAX_TRANSITIONS_IN_FLIGHT } from "./run";

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => {
  await t?.drop();
});

it("keeps at most MAX_TRANSITIONS_IN_FLIGHT claims of a wide run pending at the state-writer, and dispatches every member", async () => {
  const logger = createLogger({ service: "scheduler-test", level: "silent" });
  const P = "wide-limit";
  const members = 3 * MAX_TRANSITIONS_IN_FLIGHT + 5;
  await insertPipelineFixture(t.admin, { id: P });
  for (let i = 0; i < members; i++) {
    await insertNodeFixture(t.admin, { pipelineId: P, id: `n${i}`, type: "asset", inputs: {}, asset: { type: "text", content: `line ${i}` } });
  }
  const sw = t.pools.stateWriter;
  let inFlight = 0;
  let maxInFlight = 0;
  const jobs: JobMessage[] = [];
  const verdicts: RunVerdict[] = [];
  const coordinator = createRunCoordinator({
    db: t.pools.reader,
    logger,
    recordRun: async (req) => {
      const run =
        req.kind === "create"
          ? await createRun(sw, { id: req.runId, pipelineId: req.pipelineId, kind: req.runKind, nodeIds: req.nodeIds, metadata: {} })
          : await finishRun(sw, { id: req.runId, status: req.status, summary: req.summary });
      return { ok: true, run: toSerializedRun(run!) };
    },
    transition: async (req: TransitionRequest): Promise<TransitionReply> => {
      if (req.kind !== "claim-queued") throw new Error(`unexpected ${req.kind}`);
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      try {
        await new Promise((resolve) => setTimeout(resolve, 2)); // the state-writer's queue and commit
        const r = await claimQueued(sw, req);
        return r.outcome === "rejected" ? { ok: false, code: r.code ?? "not_ready", reason: r.reason ?? "" } : { ok: true, node: toSerializedNode(r.node!) };
      } finally {
        inFlight -= 1;
      }
    },
    dispatch: async (job) => void jobs.push(job),
    reply: (_ctx, v) => void verdicts.push(v),
    replyCancel: () => undefined,
    interrupt: () => undefined,
  });
  const ctx = { logger, headers: undefined } as unknown as ConsumeContext;
  await coordinator.start({ v: 1, kind: "run", commandId: "c1", runId: `${P}-r1`, pipelineId: P, requestedAt: "" }, ctx);

  expect(verdicts).toEqual([expect.objectContaining({ ok: true })]);
  expect(new Set(jobs.map((j) => j.nodeId)).size).toBe(members);
  expect(maxInFlight).toBeLessThanOrEqual(MAX_TRANSITIONS_IN_FLIGHT);
  expect(maxInFlight).toBeGreaterThan(1);
});

/** The reader pool, counting the run coordinator's node reads and cache lookups. */
function countingReader(db: TestDatabase["pools"]["reader"]) {
  const counts = { nodeReads: 0, cacheLookups: 0 };
  const reader = {
    query: (text: string, values?: unknown[]) => {
      if (/FROM video_production_nodes WHERE pipeline_id = \$1 AND id = ANY/.test(text)) counts.nodeReads += 1;
      if (/FROM video_production_cache WHERE cache_key = ANY/.test(text)) counts.cacheLookups += 1;
      return db.query(text, values as never);
    },
  } as unknown as TestDatabase["pools"]["reader"];
  return { reader, counts };
}

it("answers a run once its first LAUNCH_CHUNK members are dispatched, not after the whole wave; one node read and one cache lookup per chunk", async () => {
  const logger = createLogger({ service: "scheduler-test", level: "silent" });
  const P = "wide-wave";
  const members = 2 * LAUNCH_CHUNK + 7;
  await insertPipelineFixture(t.admin, { id: P });
  for (let i = 0; i < members; i++) {
    await insertNodeFixture(t.admin, { pipelineId: P, id: `n${i}`, type: "asset", inputs: {}, asset: { type: "text", content: `wave ${i}` } });
  }
  const sw = t.pools.stateWriter;
  const { reader, counts } = countingReader(t.pools.reader);
  const jobs: JobMessage[] = [];
  const verdicts: RunVerdict[] = [];
  let jobsWhenAnswered = -1;
  const coordinator = createRunCoordinator({
    db: reader,
    logger,
    recordRun: async (req) => {
      const run =
        req.kind === "create"
          ? await createRun(sw, { id: req.runId, pipelineId: req.pipelineId, kind: req.runKind, nodeIds: req.nodeIds, metadata: {} })
          : await finishRun(sw, { id: req.runId, status: req.status, summary: req.summary });
      return { ok: true, run: toSerializedRun(run!) };
    },
    transition: async (req: TransitionRequest): Promise<TransitionReply> => {
      if (req.kind !== "claim-queued") throw new Error(`unexpected ${req.kind}`);
      const r = await claimQueued(sw, req);
      return r.outcome === "rejected" ? { ok: false, code: r.code ?? "not_ready", reason: r.reason ?? "" } : { ok: true, node: toSerializedNode(r.node!) };
    },
    dispatch: async (job) => void jobs.push(job),
    reply: (_ctx, v) => {
      jobsWhenAnswered = jobs.length;
      verdicts.push(v);
    },
    replyCancel: () => undefined,
    interrupt: () => undefined,
  });
  const ctx = { logger, headers: undefined } as unknown as ConsumeContext;
  const before = { ...counts };
  await coordinator.start({ v: 1, kind: "run", commandId: "c1", runId: `${P}-r1`, pipelineId: P, requestedAt: "" }, ctx);

  // The first chunk's claims go first (the per-pipeline limit is first come, first served): when they are all
  // dispatched at most MAX_TRANSITIONS_IN_FLIGHT - 1 later claims can have been answered too.
  expect(jobsWhenAnswered).toBeGreaterThanOrEqual(LAUNCH_CHUNK);
  expect(jobsWhenAnswered).toBeLessThan(LAUNCH_CHUNK + MAX_TRANSITIONS_IN_FLIGHT);
  expect(verdicts).toEqual([expect.objectContaining({ ok: true, nodeIds: expect.any(Array) })]);
  expect(new Set(jobs.map((j) => j.nodeId)).size).toBe(members);
  const chunks = Math.ceil(members / LAUNCH_CHUNK);
  expect(counts.nodeReads - before.nodeReads).toBe(chunks);
  // The estimate looks up the members' keys once before the run; then one lookup per chunk.
  expect(counts.cacheLookups - before.cacheLookups).toBe(chunks + 1);
});

it("a first wave that fails after the answer unregisters the run: the command's redelivery adopts it again and dispatches every member once", async () => {
  const logger = createLogger({ service: "scheduler-test", level: "silent" });
  const P = "wide-redelivered";
  const members = 10;
  await insertPipelineFixture(t.admin, { id: P });
  for (let i = 0; i < members; i++) {
    await insertNodeFixture(t.admin, { pipelineId: P, id: `n${i}`, type: "asset", inputs: {}, asset: { type: "text", content: `again ${i}` } });
  }
  const sw = t.pools.stateWriter;
  const jobs: JobMessage[] = [];
  const verdicts: RunVerdict[] = [];
  let failures = 1;
  const coordinator = createRunCoordinator({
    db: t.pools.reader,
    logger,
    recordRun: async (req) => {
      const run =
        req.kind === "create"
          ? await createRun(sw, { id: req.runId, pipelineId: req.pipelineId, kind: req.runKind, nodeIds: req.nodeIds, metadata: {} })
          : await finishRun(sw, { id: req.runId, status: req.status, summary: req.summary });
      return { ok: true, run: toSerializedRun(run!) };
    },
    transition: async (req: TransitionRequest): Promise<TransitionReply> => {
      if (req.kind !== "claim-queued") throw new Error(`unexpected ${req.kind}`);
      if (req.nodeId === "n3" && failures-- > 0) throw new Error("state-writer request timed out");
      const r = await claimQueued(sw, req);
      return r.outcome === "rejected" ? { ok: false, code: r.code ?? "not_ready", reason: r.reason ?? "" } : { ok: true, node: toSerializedNode(r.node!) };
    },
    dispatch: async (job) => void jobs.push(job),
    reply: (_ctx, v) => void verdicts.push(v),
    replyCancel: () => undefined,
    interrupt: () => undefined,
  });
  const ctx = { logger, headers: undefined } as unknown as ConsumeContext;
  const cmd = { v: 1, kind: "run", commandId: "c1", runId: `${P}-r1`, pipelineId: P, requestedAt: "" } as const;
  await expect(coordinator.start(cmd, ctx)).rejects.toThrow("timed out");
  expect(verdicts).toEqual([expect.objectContaining({ ok: true })]);
  expect(coordinator.active().has(`${P}-r1`)).toBe(false);
  expect(jobs.map((j) => j.nodeId)).not.toContain("n3");

  await coordinator.start(cmd, ctx); // the redelivery
  expect(verdicts.at(-1)).toEqual({ ok: true, runId: `${P}-r1`, nodeIds: Array.from({ length: members }, (_, i) => `n${i}`) });
  expect(coordinator.active().has(`${P}-r1`)).toBe(true);
  // The members claimed the first time are queued (their jobs went out): the rebuilt plan awaits them; n3 is claimed now.
  expect(jobs.map((j) => j.nodeId).sort()).toEqual(Array.from({ length: members }, (_, i) => `n${i}`).sort());
});
