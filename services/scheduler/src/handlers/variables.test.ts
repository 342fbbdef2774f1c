/**
 * Pipeline variables in the scheduler, against the real database (a command reaching it without the gateway's
 * checks): members are keyed with their placeholders filled from the defaults, and a run or execute of a node that
 * uses a variable without a default is refused with the problems before anything is claimed or dispatched.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ExecuteVerdict, JobMessage, RunVerdict, TransitionRequest } from "@vp/contracts";
import type { ConsumeContext } from "@vp/bus";
import { claimQueued, getNode, toSerializedNode } from "@vp/db";
import { cacheKey, type KeyedNode } from "@vp/flow-graph/cache-key";
import { createTestDatabase, insertNodeFixture, insertPipelineFixture, type TestDatabase } from "@vp/testkit";
import { createLogger } from "@vp/telemetry";
import { createExecuteHandler } from "./execute";
import { createRunCoordinator } from "./run";

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => {
  await t?.drop();
});

const logger = createLogger({ service: "scheduler-variables-test", level: "silent" });
const ctx = { logger, headers: undefined } as unknown as ConsumeContext;

async function pipelineWith(id: string, variables: unknown[], content: string) {
  await insertPipelineFixture(t.admin, { id });
  await t.admin.query(`UPDATE video_production_pipelines SET variables = $2::jsonb WHERE id = $1`, [id, JSON.stringify(variables)]);
  await insertNodeFixture(t.admin, { pipelineId: id, id: "script", type: "asset", asset: { type: "text", content } });
}

function coordinator() {
  const claims: TransitionRequest[] = [];
  const jobs: JobMessage[] = [];
  const verdicts: RunVerdict[] = [];
  const c = createRunCoordinator({
    db: t.pools.reader,
    logger,
    recordRun: async (req) => {
      if (req.kind !== "create") throw new Error(`unexpected ${req.kind}`);
      return { ok: true, run: { id: req.runId, pipeline_id: req.pipelineId, node_ids: req.nodeIds } } as never;
    },
    transition: async (req) => {
      claims.push(req);
      if (req.kind !== "claim-queued") throw new Error(`unexpected ${req.kind}`);
      const r = await claimQueued(t.pools.stateWriter, req);
      return r.outcome === "rejected" ? { ok: false, code: "not_ready", reason: r.reason ?? "" } : { ok: true, node: toSerializedNode(r.node!) };
    },
    dispatch: async (job) => void jobs.push(job),
    reply: (_ctx, v) => void verdicts.push(v),
    replyCancel: () => undefined,
    interrupt: () => undefined,
  });
  return { c, claims, jobs, verdicts };
}

describe("variables in the scheduler", () => {
  it("keys a run's member with its placeholders filled from the defaults", async () => {
    await pipelineWith("vars-key", [{ name: "name", type: "text", default: "Ada" }], "Hello {{name}}");
    const h = coordinator();
    await h.c.start({ v: 1, kind: "run", commandId: "c1", runId: "vars-key-r1", pipelineId: "vars-key", requestedAt: "" }, ctx);
    expect(h.verdicts).toMatchObject([{ ok: true, nodeIds: ["script"] }]);
    expect(h.jobs.map((j) => j.nodeId)).toEqual(["script"]);
    const row = (await getNode(t.admin, "vars-key", "script"))!;
    const filled = { ...row, asset: { type: "text", content: "Hello Ada" } } as KeyedNode;
    const claim = h.claims.find((r) => r.kind === "claim-queued") as { cacheKey?: string };
    expect(claim.cacheKey).toBe(cacheKey(filled, new Map()));
    expect(claim.cacheKey).not.toBe(cacheKey(row as KeyedNode, new Map()));
  });

  it("refuses a run and an execute whose node uses a variable without a default, claiming nothing", async () => {
    await pipelineWith("vars-unfilled", [{ name: "city", type: "text" }], "Hello from {{city}}");
    const h = coordinator();
    await h.c.start({ v: 1, kind: "run", commandId: "c2", runId: "vars-unfilled-r1", pipelineId: "vars-unfilled", requestedAt: "" }, ctx);
    expect(h.verdicts).toEqual([
      {
        ok: false,
        reason: 'Give every variable these nodes use a default: "Test Node" (script): uses {{city}}, which has no default and no value in this run',
        problems: [{ nodeId: "script", message: "uses {{city}}, which has no default and no value in this run" }],
      },
    ]);
    expect(h.claims).toEqual([]);

    const verdicts: ExecuteVerdict[] = [];
    const claimed: unknown[] = [];
    const execute = createExecuteHandler({
      db: t.pools.reader,
      claim: async (cmd) => {
        claimed.push(cmd);
        return { ok: false, code: "not_ready", reason: "not expected" };
      },
      dispatch: async () => undefined,
      reply: (_ctx, v) => void verdicts.push(v),
    });
    await execute({ v: 1, kind: "execute", commandId: "e1", jobId: "j1", pipelineId: "vars-unfilled", nodeId: "script", requestedAt: "" }, ctx);
    expect(verdicts).toHaveLength(1);
    expect(verdicts[0]).toMatchObject({ ok: false });
    expect((verdicts[0] as { reason: string }).reason).toContain("{{city}}");
    expect(claimed).toEqual([]);
  });
});
