/**
 * The run coordinator against the real database: the state-writer's transitions are called directly (the same
 * db functions its handlers call), executors are simulated by claimRunning + completeNode/failNode, and every
 * applied transition is fed back as the committed event the scheduler-events consumer would deliver.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type {
  CancelVerdict,
  JobInterrupt,
  JobMessage,
  NodeChanged,
  RunCommand,
  RunReply,
  RunRequest,
  RunVerdict,
  TransitionReply,
  TransitionRequest,
} from "@vp/contracts";
import type { ConsumeContext } from "@vp/bus";
import {
  cancelNode,
  claimQueued,
  claimRunning,
  completeFromCache,
  completeNode,
  createRun,
  failNode,
  finishRun,
  getRun,
  listNodes,
  resetNode,
  toSerializedNode,
  toSerializedRun,
  type NodeRow,
  type StateResult,
} from "@vp/db";
import { createTestDatabase, insertNodeFixture, insertPipelineFixture, type TestDatabase } from "@vp/testkit";
import { createLogger } from "@vp/telemetry";
import { createRunCoordinator } from "./run";

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => {
  await t?.drop();
});

const logger = createLogger({ service: "scheduler-test", level: "silent" });

function harness() {
  const sw = t.pools.stateWriter;
  const events: NodeChanged[] = [];
  const jobs: JobMessage[] = [];
  const verdicts: RunVerdict[] = [];
  const cancels: CancelVerdict[] = [];
  const interrupts: JobInterrupt[] = [];
  const emit = (r: StateResult) => {
    if ((r.outcome === "applied" || r.outcome === "already") && r.node) {
      const n = r.node;
      events.push({
        v: 1,
        kind: "node",
        eventId: `${n.id}:${n.state_version}`,
        pipelineId: n.pipeline_id,
        nodeId: n.id,
        type: n.type,
        status: n.status,
        stateVersion: n.state_version,
        metadata: n.metadata ?? null,
        output: n.output ?? null,
        pipelineMetadata: r.pipelineMetadata,
        at: "",
      });
    }
  };
  const reply = (r: StateResult): TransitionReply =>
    r.outcome === "rejected"
      ? { ok: false, code: r.code ?? "not_ready", reason: r.reason ?? "", ...(r.node ? { node: toSerializedNode(r.node) } : {}) }
      : { ok: true, node: toSerializedNode(r.node!) };
  const coordinator = () =>
    createRunCoordinator({
      db: t.pools.reader,
      logger,
      recordRun: async (req: RunRequest): Promise<RunReply> => {
        const run =
          req.kind === "create"
            ? await createRun(sw, {
                id: req.runId,
                pipelineId: req.pipelineId,
                kind: req.runKind,
                targetNodeId: req.targetNodeId,
                nodeIds: req.nodeIds,
                metadata: { estimate: req.estimate },
              })
            : await finishRun(sw, { id: req.runId, status: req.status, summary: req.summary });
        return { ok: true, run: toSerializedRun(run!) };
      },
      transition: async (req: TransitionRequest) => {
        const r =
          req.kind === "claim-queued"
            ? await claimQueued(sw, req)
            : req.kind === "cancel"
              ? await cancelNode(sw, req)
              : req.kind === "reset"
                ? await resetNode(sw, req)
                : req.kind === "complete-from-cache"
                  ? await completeFromCache(sw, req)
                  : null;
        if (!r) throw new Error(`unexpected ${req.kind}`);
        if (r.outcome === "applied") emit(r);
        return reply(r);
      },
      dispatch: async (job) => void jobs.push(job),
      reply: (_ctx, v) => void verdicts.push(v),
      replyCancel: (_ctx, v) => void cancels.push(v),
      interrupt: (msg) => void interrupts.push(msg),
    });
  const ctx = { logger, headers: undefined } as unknown as ConsumeContext;

  /** Executors and the events consumer until nothing moves: `fail` lists nodes whose work fails. */
  /** Per node id: extra output fields (a contentHash) and the cost its executor reports. */
  const outputs = new Map<string, Record<string, unknown>>();
  const costs = new Map<string, number>();
  async function pump(c: ReturnType<typeof coordinator>, fail = new Set<string>(), order: string[] = []) {
    for (;;) {
      if (events.length) {
        await c.onEvent(events.shift()!);
        continue;
      }
      const job = jobs.shift();
      if (!job) return order;
      order.push(job.nodeId);
      const running = await claimRunning(sw, { pipelineId: job.pipelineId, nodeId: job.nodeId, jobId: job.jobId, attempt: 1 });
      if (running.outcome !== "applied") continue;
      emit(running);
      emit(
        fail.has(job.nodeId)
          ? await failNode(sw, { pipelineId: job.pipelineId, nodeId: job.nodeId, jobId: job.jobId, attempt: 1, error: "provider said 400", final: true })
          : await completeNode(sw, {
              pipelineId: job.pipelineId,
              nodeId: job.nodeId,
              jobId: job.jobId,
              attempt: 1,
              output: { type: "video", s3Key: `k/${job.pipelineId}/${job.nodeId}`, ...outputs.get(job.nodeId) },
              cost: costs.get(job.nodeId) ?? 0.01,
            }),
      );
    }
  }
  return { coordinator, ctx, pump, jobs, events, verdicts, cancels, interrupts, emit, outputs, costs };
}

let seq = 0;
async function pipelineWith(nodes: { id: string; inputs?: string[]; status?: "completed" | "failed" }[]) {
  const P = `run${++seq}`;
  await insertPipelineFixture(t.admin, { id: P });
  for (const n of nodes) {
    await insertNodeFixture(t.admin, {
      pipelineId: P,
      id: n.id,
      type: n.inputs ? "merge-videos" : "asset",
      inputs: n.inputs ? { segments: n.inputs.length > 1 ? n.inputs : [n.inputs[0]!, n.inputs[0]!] } : {},
      asset: n.inputs ? null : { type: "video", source: `k/${P}/${n.id}` },
      ...(n.status === "completed" ? { status: "completed", output: { type: "video", s3Key: `k/${P}/${n.id}` } } : {}),
      ...(n.status === "failed" ? { status: "failed", metadata: { error: "old", jobId: "old-job" } } : {}),
    });
  }
  return P;
}
const statuses = async (P: string) => Object.fromEntries((await listNodes(t.admin, P)).map((n: NodeRow) => [n.id, n.status]));

describe("run coordinator", () => {
  it("runs every node that is not completed, in dependency order, and records the run", async () => {
    const P = await pipelineWith([
      { id: "a" },
      { id: "b", inputs: ["a"] },
      { id: "c", inputs: ["b"] },
      { id: "x", status: "completed" },
      { id: "y", inputs: ["x"] },
    ]);
    const h = harness();
    const c = h.coordinator();
    await c.start({ v: 1, kind: "run", commandId: "c1", runId: `${P}-r1`, pipelineId: P, requestedAt: "" }, h.ctx);
    // Run all covers every node: x is completed and current (nothing to do), the rest execute.
    expect(h.verdicts).toMatchObject([{ ok: true, runId: `${P}-r1`, nodeIds: ["a", "b", "c", "x", "y"] }]);
    expect(h.jobs.map((j) => j.nodeId).sort()).toEqual(["a", "y"]); // dispatched together
    const order = await h.pump(c);
    expect(order.slice(0, 2).sort()).toEqual(["a", "y"]);
    expect(order.slice(2)).toEqual(["b", "c"]);
    expect(await statuses(P)).toEqual({ a: "completed", b: "completed", c: "completed", x: "completed", y: "completed" });
    expect(await getRun(t.admin, `${P}-r1`)).toMatchObject({
      status: "completed",
      metadata: { counts: { completed: 5 }, executed: 4, cached: 0, upToDate: 1 },
    });
    expect(c.active().size).toBe(0);
  });

  it("a failure cancels its dependants with the reason; the independent branch completes; progress counts are right", async () => {
    const P = await pipelineWith([
      { id: "a" },
      { id: "b", inputs: ["a"] },
      { id: "c", inputs: ["b"] },
      { id: "d", inputs: ["c"] },
      { id: "z" },
      { id: "z2", inputs: ["z"] },
    ]);
    const h = harness();
    const c = h.coordinator();
    await c.start({ v: 1, kind: "run", commandId: "c1", runId: `${P}-r`, pipelineId: P, requestedAt: "" }, h.ctx);
    await h.pump(c, new Set(["b"]));
    const nodes = Object.fromEntries((await listNodes(t.admin, P)).map((n) => [n.id, n]));
    expect(Object.fromEntries(Object.entries(nodes).map(([k, n]) => [k, n.status]))).toEqual({
      a: "completed",
      b: "failed",
      c: "cancelled",
      d: "cancelled",
      z: "completed",
      z2: "completed",
    });
    expect(nodes.c!.metadata).toMatchObject({ error: 'upstream "Test Node" (b) failed', cancelledBy: `${P}-r`, runId: `${P}-r` });
    expect(nodes.d!.metadata).toMatchObject({ error: 'upstream "Test Node" (b) failed' });
    const pipeline = await t.admin.query(`SELECT metadata FROM video_production_pipelines WHERE id = $1`, [P]);
    expect(pipeline.rows[0].metadata.progress).toMatchObject({ completed: 3, failed: 1, cancelled: 2, pending: 0, in_progress: 0, total: 6 });
    expect(await getRun(t.admin, `${P}-r`)).toMatchObject({ status: "failed", metadata: { counts: { completed: 3, failed: 1, cancelled: 2 } } });
  });

  it("run to here runs only the target and what it needs; failed members are reset with their history", async () => {
    const P = await pipelineWith([
      { id: "a", status: "failed" },
      { id: "b", inputs: ["a"] },
      { id: "c", inputs: ["b"] },
      { id: "d", inputs: ["c"] },
      { id: "e", inputs: ["d"] },
      { id: "side" },
    ]);
    const h = harness();
    const c = h.coordinator();
    await c.start({ v: 1, kind: "run", commandId: "c1", runId: `${P}-r`, pipelineId: P, targetNodeId: "d", requestedAt: "" }, h.ctx);
    expect(h.verdicts[0]).toMatchObject({ ok: true, runId: `${P}-r`, nodeIds: ["a", "b", "c", "d"] });
    expect(await h.pump(c)).toEqual(["a", "b", "c", "d"]);
    expect(await statuses(P)).toMatchObject({ a: "completed", d: "completed", e: "pending", side: "pending" });
    const a = (await listNodes(t.admin, P)).find((n) => n.id === "a")!;
    expect(a.metadata!.history).toEqual([expect.objectContaining({ status: "failed", error: "old", jobId: "old-job" })]);
  });

  it("retry: only a failed or cancelled node; downstream brings its cancelled dependants back", async () => {
    const P = await pipelineWith([{ id: "a" }, { id: "b", inputs: ["a"] }, { id: "c", inputs: ["b"] }, { id: "ok" }]);
    const h = harness();
    const c = h.coordinator();
    await c.start({ v: 1, kind: "run", commandId: "c1", runId: `${P}-1`, pipelineId: P, requestedAt: "" }, h.ctx);
    await h.pump(c, new Set(["b"]));
    expect(await statuses(P)).toEqual({ a: "completed", b: "failed", c: "cancelled", ok: "completed" });

    await c.start({ v: 1, kind: "run", commandId: "c2", runId: `${P}-2`, pipelineId: P, targetNodeId: "a", retry: true, requestedAt: "" }, h.ctx);
    expect(h.verdicts.at(-1)).toEqual({ ok: false, reason: "Node cannot be retried (status: completed); only failed or cancelled nodes are" });
    await c.start(
      { v: 1, kind: "run", commandId: "c3", runId: `${P}-3`, pipelineId: P, targetNodeId: "b", retry: true, downstream: true, requestedAt: "" },
      h.ctx,
    );
    expect(h.verdicts.at(-1)).toMatchObject({ ok: true, runId: `${P}-3`, nodeIds: ["b", "c"] });
    expect(await h.pump(c)).toEqual(["b", "c"]);
    expect(await statuses(P)).toEqual({ a: "completed", b: "completed", c: "completed", ok: "completed" });
    const b = (await listNodes(t.admin, P)).find((n) => n.id === "b")!;
    expect(b.metadata!.history).toEqual([expect.objectContaining({ status: "failed", error: "provider said 400", runId: `${P}-1` })]);
    expect(await getRun(t.admin, `${P}-3`)).toMatchObject({ kind: "retry", status: "completed" });
  });

  it("refuses with every graph problem at once, and a second run over the same nodes", async () => {
    const P = await pipelineWith([{ id: "a" }, { id: "b", inputs: ["ghost"] }, { id: "c", inputs: ["d"] }, { id: "d", inputs: ["c"] }]);
    const h = harness();
    const c = h.coordinator();
    await c.start({ v: 1, kind: "run", commandId: "c1", runId: `${P}-bad`, pipelineId: P, requestedAt: "" }, h.ctx);
    expect(h.verdicts[0]).toMatchObject({ ok: false, problems: [{ nodeId: "c" }, { nodeId: "d" }, { nodeId: "b", slot: "segments" }] });
    expect(h.jobs).toEqual([]);
    expect(await getRun(t.admin, `${P}-bad`)).toBeNull();

    const Q = await pipelineWith([{ id: "a" }, { id: "b", inputs: ["a"] }]);
    await c.start({ v: 1, kind: "run", commandId: "c2", runId: `${Q}-1`, pipelineId: Q, requestedAt: "" }, h.ctx);
    await c.start({ v: 1, kind: "run", commandId: "c3", runId: `${Q}-2`, pipelineId: Q, targetNodeId: "b", requestedAt: "" }, h.ctx);
    expect(h.verdicts.slice(1)).toMatchObject([
      { ok: true, runId: `${Q}-1`, nodeIds: ["a", "b"] },
      { ok: false, reason: `Pipeline already has run ${Q}-1 over some of these nodes; cancel it or wait` },
    ]);
    // The same command again (a redelivery) is answered from the run it started.
    await c.start({ v: 1, kind: "run", commandId: "c2", runId: `${Q}-1`, pipelineId: Q, requestedAt: "" }, h.ctx);
    expect(h.verdicts.at(-1)).toEqual({ ok: true, runId: `${Q}-1`, nodeIds: ["a", "b"] });
    expect(h.jobs.map((j) => j.nodeId)).toEqual(["a"]);
  });

  it("a restarted scheduler rebuilds running runs from the database and finishes them, never claiming a node twice", async () => {
    const P = await pipelineWith([{ id: "a" }, { id: "b", inputs: ["a"] }, { id: "c", inputs: ["b"] }, { id: "f" }, { id: "g", inputs: ["f"] }]);
    const h = harness();
    const first = h.coordinator();
    await first.start({ v: 1, kind: "run", commandId: "c1", runId: `${P}-r`, pipelineId: P, requestedAt: "" }, h.ctx);
    // "a" completes and "f" fails while the scheduler is down: their events are never seen by the first one.
    const ja = h.jobs.find((j) => j.nodeId === "a")!;
    const jf = h.jobs.find((j) => j.nodeId === "f")!;
    h.jobs.length = 0;
    const sw = t.pools.stateWriter;
    await claimRunning(sw, { pipelineId: P, nodeId: "a", jobId: ja.jobId, attempt: 1 });
    await completeNode(sw, { pipelineId: P, nodeId: "a", jobId: ja.jobId, attempt: 1, output: { type: "video", s3Key: `k/${P}/a` }, cost: 0 });
    await claimRunning(sw, { pipelineId: P, nodeId: "f", jobId: jf.jobId, attempt: 1 });
    await failNode(sw, { pipelineId: P, nodeId: "f", jobId: jf.jobId, attempt: 1, error: "boom", final: true });
    h.events.length = 0;

    const second = h.coordinator();
    expect(await second.resume()).toBeGreaterThanOrEqual(1);
    expect(h.jobs.map((j) => j.nodeId)).toEqual(["b"]);
    expect(await h.pump(second)).toEqual(["b", "c"]);
    expect(await statuses(P)).toEqual({ a: "completed", b: "completed", c: "completed", f: "failed", g: "cancelled" });
    expect(await getRun(t.admin, `${P}-r`)).toMatchObject({ status: "failed", metadata: { counts: { completed: 3, failed: 1, cancelled: 1 } } });
  });

  it("cancel: a running node is cancelled and its job interrupted, its dependants follow; a pipeline cancel stops every queued node", async () => {
    const P = await pipelineWith([{ id: "a" }, { id: "b", inputs: ["a"] }, { id: "c", inputs: ["b"] }, { id: "q" }, { id: "q2", inputs: ["q"] }]);
    const h = harness();
    const c = h.coordinator();
    await c.start({ v: 1, kind: "run", commandId: "c1", runId: `${P}-r`, pipelineId: P, requestedAt: "" }, h.ctx);
    const ja = h.jobs.find((j) => j.nodeId === "a")!; // a: started by an executor, then cancelled by the user
    h.jobs.splice(h.jobs.indexOf(ja), 1);
    const started = await claimRunning(t.pools.stateWriter, { pipelineId: P, nodeId: "a", jobId: ja.jobId, attempt: 1 });
    h.emit(started);
    await c.cancel({ v: 1, kind: "cancel", commandId: "k1", pipelineId: P, nodeId: "a", by: "user", requestedAt: "" }, h.ctx);
    expect(h.cancels).toEqual([{ ok: true, cancelled: ["a"] }]);
    expect(h.interrupts).toEqual([{ v: 1, pipelineId: P, nodeId: "a", jobId: ja.jobId, reason: "cancelled by user" }]);
    while (h.events.length) await c.onEvent(h.events.shift()!); // the scheduler-events consumer
    // The executor's late result is rejected: the node is no longer in_progress.
    expect(
      (await completeNode(t.pools.stateWriter, { pipelineId: P, nodeId: "a", jobId: ja.jobId, attempt: 1, output: { type: "video", s3Key: "k" }, cost: 0 }))
        .outcome,
    ).toBe("rejected");

    // q is queued (its job not yet taken by an executor): the pipeline cancel stops it and q2 never starts.
    await c.cancel({ v: 1, kind: "cancel", commandId: "k2", pipelineId: P, by: "user", requestedAt: "" }, h.ctx);
    expect(h.cancels[1]).toMatchObject({ ok: true, cancelled: expect.arrayContaining(["q", "q2"]) });
    expect(await h.pump(c)).toEqual(["q"]); // the executor finds q cancelled and never starts it
    const nodes = Object.fromEntries((await listNodes(t.admin, P)).map((n) => [n.id, n]));
    expect(Object.fromEntries(Object.entries(nodes).map(([k, n]) => [k, n.status]))).toEqual({
      a: "cancelled",
      b: "cancelled",
      c: "cancelled",
      q: "cancelled",
      q2: "cancelled",
    });
    expect(nodes.a!.metadata).toMatchObject({ error: "cancelled by user", cancelledBy: "user" });
    expect(nodes.b!.metadata).toMatchObject({ error: 'upstream "Test Node" (a) was cancelled' });
    expect(nodes.q!.metadata!.startedAt).toBeUndefined();
    expect(await getRun(t.admin, `${P}-r`)).toMatchObject({ status: "cancelled", metadata: { counts: { cancelled: 5 } } });
    // Cancelling a node that is already cancelled is answered as done (idempotent); a completed one is refused.
    await c.cancel({ v: 1, kind: "cancel", commandId: "k3", pipelineId: P, nodeId: "a", by: "user", requestedAt: "" }, h.ctx);
    expect(h.cancels.at(-1)).toMatchObject({ ok: true });
  });

  describe("cache and budgets", () => {
    /** a (asset: the same uploaded file key in every pipeline that passes `shared`) -> b (merge) -> c (merge). */
    async function chain(shared: string, config: Record<string, unknown> = {}) {
      const P = `cache${++seq}`;
      await insertPipelineFixture(t.admin, { id: P });
      await insertNodeFixture(t.admin, { pipelineId: P, id: "a", type: "asset", asset: { type: "video", source: `k/${shared}/a` } });
      await insertNodeFixture(t.admin, { pipelineId: P, id: "b", type: "merge-videos", inputs: { segments: ["a", "a"] }, config });
      await insertNodeFixture(t.admin, { pipelineId: P, id: "c", type: "merge-videos", inputs: { segments: ["b", "b"] } });
      return P;
    }
    const nodesOf = async (P: string) => Object.fromEntries((await listNodes(t.admin, P)).map((n) => [n.id, n]));
    const hash = (c: string) => c.repeat(64);
    const run = (
      h: ReturnType<typeof harness>,
      c: ReturnType<ReturnType<typeof harness>["coordinator"]>,
      P: string,
      runId: string,
      extra: Partial<RunCommand> = {},
    ) => c.start({ v: 1, kind: "run", commandId: runId, runId, pipelineId: P, requestedAt: "", ...extra }, h.ctx);

    it("the same work in another pipeline completes from the cache; a config edit reruns only that node and its dependants; an identical rerun executes nothing", async () => {
      const shared = `shared${seq}`;
      const h = harness();
      const c = h.coordinator();
      h.outputs
        .set("a", { contentHash: hash("a") })
        .set("b", { contentHash: hash("b") })
        .set("c", { contentHash: hash("c") });
      h.costs.set("a", 0).set("b", 0.25).set("c", 0.5);
      const P1 = await chain(shared);
      await run(h, c, P1, `${P1}-1`);
      expect(await h.pump(c)).toEqual(["a", "b", "c"]);

      // Another pipeline, same file and config: nothing executes, every node is taken from the cache.
      const P2 = await chain(shared);
      await run(h, c, P2, `${P2}-1`);
      expect(await h.pump(c)).toEqual([]);
      const n2 = await nodesOf(P2);
      for (const id of ["a", "b", "c"]) {
        expect(n2[id]!.status).toBe("completed");
        expect(n2[id]!.metadata).toMatchObject({ cached: true, cachedFrom: { pipelineId: P1, nodeId: id, runId: `${P1}-1` }, cost: 0, runId: `${P2}-1` });
        expect(n2[id]!.output).toEqual((await nodesOf(P1))[id]!.output);
      }
      expect(n2.c!.metadata!.costSaved).toBe(0.5);
      expect(await getRun(t.admin, `${P2}-1`)).toMatchObject({ status: "completed", metadata: { executed: 0, cached: 3, costSaved: 0.75 } });
      const pipeline = await t.admin.query(`SELECT metadata FROM video_production_pipelines WHERE id = $1`, [P2]);
      expect(pipeline.rows[0].metadata).toMatchObject({ totalCost: 0, costSaved: 0.75 });

      // A config edit of b in P1: b and its dependant c run again (b's new bytes change c's key), a does not.
      await t.admin.query(`UPDATE video_production_nodes SET config = '{"reencode":"always"}' WHERE pipeline_id = $1 AND id = 'b'`, [P1]);
      h.outputs.set("b", { contentHash: hash("d") });
      await run(h, c, P1, `${P1}-2`);
      expect(await h.pump(c)).toEqual(["b", "c"]);
      const n1 = await nodesOf(P1);
      expect(n1.b!.metadata!.history).toEqual([expect.objectContaining({ status: "completed", reason: "stale", runId: `${P1}-1`, cost: 0.25 })]);
      expect(await getRun(t.admin, `${P1}-2`)).toMatchObject({ status: "completed", metadata: { executed: 2, cached: 0, upToDate: 1 } });

      // The same run again: nothing executes; the run reports what it did not pay again.
      await run(h, c, P1, `${P1}-3`);
      expect(await h.pump(c)).toEqual([]);
      expect(await getRun(t.admin, `${P1}-3`)).toMatchObject({ status: "completed", metadata: { executed: 0, upToDate: 3, costSaved: 0.75 } });

      // Editing b back finds its first result in the cache; c is keyed on that result and is found there too.
      await t.admin.query(`UPDATE video_production_nodes SET config = '{}' WHERE pipeline_id = $1 AND id = 'b'`, [P1]);
      await run(h, c, P1, `${P1}-4`);
      expect(await h.pump(c)).toEqual([]);
      expect(await nodesOf(P1)).toMatchObject({ b: { metadata: { cached: true, costSaved: 0.25 } }, c: { metadata: { cached: true, costSaved: 0.5 } } });
    });

    it("force bypasses the cache; the estimate counts cached members as saved", async () => {
      const shared = `forced${seq}`;
      const h = harness();
      const c = h.coordinator();
      h.outputs
        .set("a", { contentHash: hash("1") })
        .set("b", { contentHash: hash("2") })
        .set("c", { contentHash: hash("3") });
      const P1 = await chain(shared);
      await run(h, c, P1, `${P1}-1`);
      await h.pump(c);
      const P2 = await chain(shared);
      await run(h, c, P2, `${P2}-1`, { force: true });
      expect(h.verdicts.at(-1)).toMatchObject({ ok: true, estimate: { nodes: [{ source: "execute" }, { source: "execute" }, { source: "execute" }] } });
      expect(await h.pump(c)).toEqual(["a", "b", "c"]);
      const P3 = await chain(shared);
      await run(h, c, P3, `${P3}-1`);
      // Only a's key is known before the run (b and c wait for their inputs): a is estimated as cached.
      expect(h.verdicts.at(-1)).toMatchObject({
        ok: true,
        estimate: {
          nodes: [
            { nodeId: "a", source: "cached" },
            { nodeId: "b", source: "execute" },
            { nodeId: "c", source: "execute" },
          ],
        },
      });
      expect(await h.pump(c)).toEqual([]);
    });

    it("a run whose estimate exceeds the pipeline's maxCost is refused with the per-node estimate; nothing runs", async () => {
      const P = `budget${++seq}`;
      await insertPipelineFixture(t.admin, { id: P, config: { maxCost: 0.5 } });
      await insertNodeFixture(t.admin, { pipelineId: P, id: "script", type: "asset", asset: { type: "text", content: "Hello there. ".repeat(40) } });
      await insertNodeFixture(t.admin, { pipelineId: P, id: "head", type: "talking-head", inputs: { script: ["script"] }, config: { provider: "heygen" } });
      await insertNodeFixture(t.admin, {
        pipelineId: P,
        id: "voice",
        type: "generate-voiceover",
        inputs: { script: ["script"] },
        config: { provider: "local" },
      });
      const h = harness();
      const c = h.coordinator();
      await run(h, c, P, `${P}-1`);
      const verdict = h.verdicts.at(-1)!;
      expect(verdict.ok).toBe(false);
      if (verdict.ok) return;
      expect(verdict.reason).toMatch(/^Estimated cost \$\d+\.\d\d exceeds the pipeline's budget \(maxCost\) of \$0\.50: "Test Node" \(head\) \$/);
      expect(verdict.estimate).toMatchObject({
        maxCost: 0.5,
        withinBudget: false,
        nodes: [{ nodeId: "script", estimatedCost: 0 }, { nodeId: "head", source: "execute" }, { nodeId: "voice" }],
      });
      expect(verdict.estimate!.nodes[1]!.estimatedCost).toBeGreaterThan(0.5);
      expect(verdict.estimate!.estimatedTotalCost).toBe(verdict.estimate!.nodes.reduce((sum, n) => sum + n.estimatedCost, 0));
      expect(h.jobs).toEqual([]);
      expect(await getRun(t.admin, `${P}-1`)).toBeNull();
      expect(await statuses(P)).toEqual({ script: "pending", head: "pending", voice: "pending" });

      // Within budget: the run starts and the estimate is recorded on the run and the pipeline.
      await t.admin.query(`UPDATE video_production_pipelines SET config = '{"maxCost": 100}' WHERE id = $1`, [P]);
      await run(h, c, P, `${P}-2`);
      expect(h.verdicts.at(-1)).toMatchObject({ ok: true, estimate: { withinBudget: true, maxCost: 100 } });
      const recorded = await getRun(t.admin, `${P}-2`);
      expect(recorded!.metadata.estimate).toMatchObject({ estimatedTotalCost: verdict.estimate!.estimatedTotalCost });
      const pipeline = await t.admin.query(`SELECT metadata FROM video_production_pipelines WHERE id = $1`, [P]);
      expect(pipeline.rows[0].metadata).toMatchObject({ lastRunId: `${P}-2`, estimatedTotalCost: verdict.estimate!.estimatedTotalCost });
    });
  });
});
