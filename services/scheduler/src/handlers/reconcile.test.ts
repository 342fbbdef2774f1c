/**
 * The reconciler's pass for queued nodes against the real database and NATS: a node queued for a job whose message
 * is gone (a nats-server killed before it wrote the message) gets its job published again, once; a node that is
 * only waiting behind other jobs of its type, or was queued a moment ago, is left alone.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { publish } from "@vp/bus";
import { JobMessage } from "@vp/contracts";
import { createLogger } from "@vp/telemetry";
import { createTestBus, createTestDatabase, insertNodeFixture, insertPipelineFixture, type TestBus, type TestDatabase } from "@vp/testkit";
import { createReconciler, jobBacklogOf } from "./reconcile";

let t: TestDatabase;
let bus: TestBus;
beforeAll(async () => {
  [t, bus] = await Promise.all([createTestDatabase(), createTestBus()]);
});
afterAll(async () => {
  await bus?.cleanup();
  await t?.drop();
});

const logger = createLogger({ service: "scheduler-test", level: "silent" });
const STALLED_AFTER_MS = 30_000;

function reconciler() {
  const published: string[] = [];
  const reconcileOnce = createReconciler({
    db: t.pools.reader,
    publishJob: async (job, msgId) => {
      await publish(bus.bus, bus.topology.messages.job(job.type), job, { msgId });
      published.push(msgId);
    },
    publishFailed: async () => {
      throw new Error("no node here is stalled in progress");
    },
    jobBacklog: jobBacklogOf(bus.bus, bus.topology),
    stalledAfterMs: STALLED_AFTER_MS,
    maxAttempts: 5,
    logger,
  });
  return { reconcileOnce, published };
}

/** The job messages of a type now in VP_JOBS (a work queue: what no executor has acknowledged). */
async function jobsOf(type: "merge-videos" | "mix-audio"): Promise<JobMessage[]> {
  const spec = bus.topology.consumers.job(type);
  const info = await bus.bus.jsm.streams.info(spec.stream);
  const jobs: JobMessage[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const msg = await bus.bus.jsm.streams.getMessage(spec.stream, { seq }).catch(() => null);
    if (msg && msg.subject === bus.topology.subjects.job(type)) jobs.push(JobMessage.parse(msg.json()));
  }
  return jobs;
}

const minutesAgo = (m: number) => new Date(Date.now() - m * 60_000).toISOString();

describe("reconciler: queued nodes", () => {
  it("publishes the job of a node queued long ago when its type has no job message at all, once", async () => {
    const { id: P } = await insertPipelineFixture(t.admin);
    await insertNodeFixture(t.admin, {
      pipelineId: P,
      id: "m",
      type: "merge-videos",
      status: "queued",
      metadata: { jobId: "run-1-m", runId: "run-1", queuedAt: minutesAgo(5), attempt: 0 },
    });
    // Queued a moment ago: its message may still be on its way.
    await insertNodeFixture(t.admin, {
      pipelineId: P,
      id: "fresh",
      type: "merge-videos",
      status: "queued",
      metadata: { jobId: "run-1-fresh", queuedAt: minutesAgo(0) },
    });
    const { reconcileOnce, published } = reconciler();

    expect(await reconcileOnce()).toEqual({ revived: 0, failed: 0, requeued: 1 });
    expect(published).toEqual([
      `run-1-m:requeue:${(await t.admin.query("select metadata->>'queuedAt' as q from video_production_nodes where id = 'm'")).rows[0].q}`,
    ]);
    expect((await jobsOf("merge-videos")).map((j) => [j.jobId, j.pipelineId, j.nodeId])).toEqual([["run-1-m", P, "m"]]);
    // The job is waiting for an executor now: the next pass publishes nothing more.
    expect(await reconcileOnce()).toEqual({ revived: 0, failed: 0, requeued: 0 });
    expect(await jobsOf("merge-videos")).toHaveLength(1);
  });

  it("leaves a long-queued node alone while jobs of its type wait or run (it may be waiting its turn)", async () => {
    const { id: P } = await insertPipelineFixture(t.admin);
    await publish(
      bus.bus,
      bus.topology.messages.job("mix-audio"),
      { v: 1, jobId: "other-job", pipelineId: P, nodeId: "other", type: "mix-audio", dispatchedAt: new Date().toISOString() },
      { msgId: "other-job" },
    );
    await insertNodeFixture(t.admin, {
      pipelineId: P,
      id: "waiting",
      type: "mix-audio",
      status: "queued",
      metadata: { jobId: "run-2-waiting", queuedAt: minutesAgo(10) },
    });
    const { reconcileOnce, published } = reconciler();
    expect((await reconcileOnce()).requeued).toBe(0);
    expect(published).toEqual([]);
    expect((await jobsOf("mix-audio")).map((j) => j.jobId)).toEqual(["other-job"]);
  });
});
