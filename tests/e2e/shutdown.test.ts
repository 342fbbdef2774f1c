/**
 * Graceful shutdown: SIGTERM to an executor in the middle of a long merge (re-encode of two 12 s clips).
 * (a) Grace period longer than the work: the same process finishes the job, acknowledges it and exits 0
 *     within the grace period; the node completes once.
 * (b) Grace period shorter than the work: the process interrupts the job, hands it back (nak) and exits
 *     within the grace period without leaving ffmpeg behind; another executor completes it exactly once.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createTestBus,
  createTestDatabase,
  openSse,
  startService,
  startStack,
  type ServiceProcess,
  type Stack,
  type TestBus,
  type TestDatabase,
} from "@vp/testkit";
import { client, createCompletedClips, ffmpegProcessesUnder, type Client } from "./helpers";

let db: TestDatabase;
let bus: TestBus;
let stack: Stack;
let api: Client;
let scratch: string;
let pipelineId: string;
const executors: ServiceProcess[] = [];

const startExecutor = async (graceMs?: number) => {
  const executor = await startService("executor-ffmpeg", { ...stack.env, ...(graceMs !== undefined ? { SHUTDOWN_GRACE_MS: String(graceMs) } : {}) });
  executors.push(executor);
  return executor;
};

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "vp-shutdown-"));
  db = await createTestDatabase();
  bus = await createTestBus({ jobAckWaitMs: 10_000 });
  stack = await startStack({
    databaseAdminUrl: db.adminUrl,
    namespace: bus.topology.namespace,
    storageRoot: join(scratch, "storage"),
    workRoot: join(scratch, "work"),
    services: ["state-writer", "scheduler", "gateway"],
    // A roomy ack wait: on a loaded machine a 3 s one redelivers jobs whose heartbeats were starved.
    env: { JOB_ACK_WAIT_MS: "10000" },
  });
  api = client(stack.baseUrl);
});

afterAll(async () => {
  await Promise.all(executors.map((e) => e.stop()));
  await stack?.stop();
  await bus?.cleanup();
  await db?.drop();
  await rm(scratch, { recursive: true, force: true });
});

/** Adds a merge node that re-encodes p and q, executes it and resolves once its ffmpeg runs. */
async function startLongMerge(nodeId: string) {
  await api.ok("POST", `/pipelines/${pipelineId}/nodes`, {
    id: nodeId,
    title: nodeId,
    type: "merge-videos",
    inputs: { segments: ["p", "q"] },
    config: { reencode: "always" },
  });
  const watcher = openSse(`${api.root}/pipelines/${pipelineId}/events`);
  await watcher.waitFor((events) => events.some((e) => e.event === "snapshot"));
  const execute = await api.call("POST", `/pipelines/${pipelineId}/nodes/${nodeId}/execute`);
  expect(execute.status).toBe(200);
  const deadline = Date.now() + 30_000;
  while ((await ffmpegProcessesUnder(stack.env.WORK_ROOT!)).length === 0) {
    if (Date.now() > deadline) throw new Error("ffmpeg never started");
    await new Promise((r) => setTimeout(r, 25));
  }
  return { watcher, jobId: execute.body.job_id as string };
}

const completions = (events: { event: string; data: unknown }[], nodeId: string) =>
  events.filter((e) => e.event === "node" && (e.data as { nodeId: string }).nodeId === nodeId && (e.data as { status: string }).status === "completed");
const ofNode = (p: ServiceProcess, msg: string, nodeId: string) => p.logs.filter((l) => l.msg === msg && l.pipelineId === pipelineId && l.nodeId === nodeId);

async function sigterm(p: ServiceProcess) {
  const sent = Date.now();
  p.kill("SIGTERM");
  const exit = await p.exited;
  return { ...exit, ms: Date.now() - sent };
}

describe("SIGTERM to an executor mid-job", () => {
  it("(a) with a grace period longer than the work: finishes the job itself, acks, exits 0 in time", async () => {
    const executor = await startExecutor(60_000);
    const { pipeline } = await api.ok("POST", "/pipelines", { title: "shutdown" });
    pipelineId = pipeline.id;
    await createCompletedClips(api, pipelineId, [
      { id: "p", durationSeconds: 12, width: 640, height: 360 },
      { id: "q", durationSeconds: 12, width: 480, height: 270 },
    ]);
    const { watcher } = await startLongMerge("a");
    expect((await api.node(pipelineId, "a")).status).toBe("in_progress");

    const exit = await sigterm(executor);
    expect(exit.code).toBe(0);
    expect(exit.ms).toBeLessThan(60_000);
    // It finished the job before exiting: completed by this process, nothing handed back.
    const node = await api.node(pipelineId, "a");
    expect(node.status, JSON.stringify(node.metadata)).toBe("completed");
    expect(ofNode(executor, "work completed", "a").length).toBeGreaterThanOrEqual(1);
    expect(executor.logs.some((l) => String(l.msg).startsWith("handlers still running at stop"))).toBe(false);
    expect(executor.logs.find((l) => l.msg === "shutting down")).toMatchObject({ graceMs: 60_000 });
    // Acknowledged: the job consumer holds nothing any more.
    const info = await bus.bus.jsm.consumers.info(bus.topology.consumers.job("merge-videos").stream, bus.topology.consumers.job("merge-videos").durable);
    expect([info.num_pending, info.num_ack_pending]).toEqual([0, 0]);
    await watcher.waitFor((events) => completions(events, "a").length > 0);
    await new Promise((r) => setTimeout(r, 300));
    await watcher.close();
    expect(completions(watcher.events, "a")).toHaveLength(1);
  }, 120_000);

  it("(b) with a short grace period: exits within it, hands the job back, another executor completes it once", async () => {
    const graceMs = 2_000;
    const first = await startExecutor(graceMs);
    const { watcher } = await startLongMerge("b");

    const exit = await sigterm(first);
    expect(exit.code).toBe(0);
    // Within the grace period (plus the time the process takes to exit after its last step).
    expect(exit.ms).toBeLessThan(graceMs + 500);
    expect(first.logs.some((l) => String(l.msg).startsWith("handlers still running at stop"))).toBe(true);
    expect(ofNode(first, "work completed", "b")).toHaveLength(0);
    expect(await ffmpegProcessesUnder(stack.env.WORK_ROOT!)).toEqual([]);
    expect((await api.node(pipelineId, "b")).status).toBe("in_progress");

    const second = await startExecutor();
    const node = await api.waitForStatus(pipelineId, "b", ["completed", "failed"], 90_000);
    expect(node.status, JSON.stringify(node.metadata)).toBe("completed");
    // Attempt 2 normally; more only if the machine starved a heartbeat past the ack wait (still one completion).
    expect(node.metadata!.attempt as number).toBeGreaterThanOrEqual(2);
    expect(ofNode(second, "work completed", "b").length).toBeGreaterThanOrEqual(1);
    expect(node.output!.duration as number).toBeCloseTo(24, 0);
    await watcher.waitFor((events) => completions(events, "b").length > 0);
    await new Promise((r) => setTimeout(r, 500));
    await watcher.close();
    expect(completions(watcher.events, "b")).toHaveLength(1);
  }, 150_000);
});
