/**
 * Invariant 3's safety net: a node must never stay in_progress after its executor died, even when the
 * job message is gone too (acknowledged by a superseded delivery, or lost). The scheduler's reconciler
 * notices the stopped heartbeat and publishes the job again; a node that keeps losing its executor fails
 * with the reason.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { insertNodeFixture, insertPipelineFixture, startTestStack, type Stack, type TestBus, type TestDatabase, type TestStack } from "@vp/testkit";
import { client, createCompletedClips, ffmpegProcessesUnder, type Client } from "./helpers";

let db: TestDatabase;
let bus: TestBus;
let stack: Stack;
let api: Client;
let scratch: string;

let fixture: TestStack;

beforeAll(async () => {
  fixture = await startTestStack({
    prefix: "vp-reconcile-",
    jobAckWaitMs: 3000,
    env: { STALLED_AFTER_MS: "4000", RECONCILE_INTERVAL_MS: "500", MAX_NODE_ATTEMPTS: "3" },
    services: ["state-writer", "scheduler", "executor-ffmpeg", "gateway"],
  });
  ({ db, bus, stack, scratch } = fixture);
  api = client(stack.baseUrl);
});

afterAll(async () => {
  await fixture?.cleanup();
});

describe("reconciler", () => {
  it("revives an in_progress node whose executor died and whose job message is gone", async () => {
    const { pipeline } = await api.ok("POST", "/pipelines", { title: "Lost job" });
    await createCompletedClips(api, pipeline.id, [
      { id: "p", durationSeconds: 10, width: 640, height: 360 },
      { id: "q", durationSeconds: 10, width: 480, height: 270 },
    ]);
    await api.ok("POST", `/pipelines/${pipeline.id}/nodes`, {
      id: "m",
      title: "Merge",
      type: "merge-videos",
      inputs: { segments: ["p", "q"] },
      config: { reencode: "always" },
    });
    await api.ok("POST", `/pipelines/${pipeline.id}/nodes/m/execute`);

    const workRoot = stack.env.WORK_ROOT!;
    const deadline = Date.now() + 30_000;
    while ((await ffmpegProcessesUnder(workRoot)).length === 0) {
      if (Date.now() > deadline) throw new Error("ffmpeg never started");
      await new Promise((r) => setTimeout(r, 25));
    }
    const victim = stack.services.get("executor-ffmpeg")!;
    victim.kill("SIGKILL");
    await victim.exited;
    // The job message disappears with it: nothing left for JetStream to redeliver.
    await bus.bus.jsm.streams.purge(bus.topology.streams.jobs.name);
    expect((await bus.bus.jsm.streams.info(bus.topology.streams.jobs.name)).state.messages).toBe(0);
    expect((await api.node(pipeline.id, "m")).status).toBe("in_progress");

    await stack.start("executor-ffmpeg");
    const node = await api.waitForStatus(pipeline.id, "m", ["completed", "failed"], 90_000);
    expect(node.status, JSON.stringify(node.metadata)).toBe("completed");
    expect(node.metadata!.retries).toBeGreaterThanOrEqual(1);
    expect(node.output!.duration as number).toBeCloseTo(20, 0);
    const revived = stack.services.get("scheduler")!.logs.filter((l) => l.msg === "stalled node revived: job published again" && l.nodeId === "m");
    expect(revived.length).toBeGreaterThanOrEqual(1);
  });

  it("fails a node that keeps losing its executor, with the reason", async () => {
    const pipeline = await insertPipelineFixture(db.admin);
    const longAgo = new Date(Date.now() - 3600_000).toISOString();
    await insertNodeFixture(db.admin, {
      pipelineId: pipeline.id,
      id: "doomed",
      type: "merge-videos",
      status: "in_progress",
      metadata: { jobId: "job-doomed", attempt: 3, retries: 2, startedAt: longAgo, heartbeatAt: longAgo },
    });
    const node = await api.waitForStatus(pipeline.id, "doomed", ["failed"], 30_000);
    expect(node.metadata!.error).toMatch(/^The executor stopped responding during 3 attempts/);
  });
});
