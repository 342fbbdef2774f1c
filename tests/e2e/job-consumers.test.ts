/**
 * Scale from zero: on a fresh NATS the scheduler alone creates every executor's job consumer, from the shared job
 * settings, so a job queued before its executor ever ran waits on its own consumer (the lag an autoscaler reads per
 * consumer). An executor started afterwards with the same settings finds its consumers as they are.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type JobMessage, NODE_TYPES, type NodeType } from "@vp/contracts";
import { publish } from "@vp/bus";
import { createTestBus, createTestDatabase, startStack, startService, type Stack, type TestBus, type TestDatabase } from "@vp/testkit";

let db: TestDatabase;
let bus: TestBus;
let stack: Stack;
let scratch: string;

const SETTINGS = { JOB_ACK_WAIT_MS: "4000", JOB_MAX_ATTEMPTS: "3", JOB_CONCURRENCY: "3", TALKING_HEAD_CONCURRENCY: "2" };
const expectedConcurrency = (t: NodeType) => (t === "talking-head" ? 2 : t === "render-code" ? 1 : 3);

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "vp-e2e-consumers-"));
  db = await createTestDatabase();
  bus = await createTestBus({ ensure: false });
  stack = await startStack({
    databaseAdminUrl: db.adminUrl,
    namespace: bus.topology.namespace,
    storageRoot: join(scratch, "storage"),
    workRoot: join(scratch, "work"),
    env: SETTINGS,
    services: ["scheduler"],
  });
});

afterAll(async () => {
  await stack?.stop();
  await bus?.cleanup();
  await db?.drop();
  await rm(scratch, { recursive: true, force: true });
});

describe("job consumers before any executor", () => {
  it("the scheduler alone creates each node type's consumer with the shared settings; a queued job is lag on its own consumer only; an executor leaves them as they are", async () => {
    const jobs = bus.topology.streams.jobs.name;
    const info = (t: NodeType) => bus.bus.jsm.consumers.info(jobs, `executor-${t}`);
    for (const type of NODE_TYPES) {
      const { config } = await info(type);
      expect(config, type).toMatchObject({ filter_subject: bus.topology.subjects.job(type), ack_wait: 4000 * 1e6, max_ack_pending: expectedConcurrency(type) });
    }

    const job: JobMessage = {
      v: 1,
      jobId: "job-before-executors",
      pipelineId: "p1",
      nodeId: "n1",
      type: "talking-head",
      dispatchedAt: new Date().toISOString(),
    };
    await publish(bus.bus, bus.topology.messages.job("talking-head"), job, { msgId: job.jobId });
    for (const type of NODE_TYPES) expect((await info(type)).num_pending, type).toBe(type === "talking-head" ? 1 : 0);

    // executor-ffmpeg with the same settings: its consumers keep their configuration (no update, no flip).
    const before = Object.fromEntries(await Promise.all(NODE_TYPES.map(async (t) => [t, (await info(t)).config] as const)));
    const executor = await startService("executor-ffmpeg", { ...stack.envOf("executor-ffmpeg"), WORK_ROOT: join(scratch, "work", "executor-ffmpeg") });
    try {
      for (const type of NODE_TYPES) expect((await info(type)).config, type).toEqual(before[type]);
      expect((await info("talking-head")).num_pending).toBe(1);
    } finally {
      await executor.stop();
    }
  });
});
