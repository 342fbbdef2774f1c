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
import { createRunCoordinator, MAX_TRANSITIONS_IN_FLIGHT } from "./run";

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
