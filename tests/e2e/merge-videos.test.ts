/**
 * The vertical slice end to end, through HTTP only, with the five services as real processes on the
 * machine's Postgres, NATS and ffmpeg: a merge watched live over SSE, racing executes that run the work
 * once, an executor SIGKILLed mid-merge, and a non-media upload failing with ffmpeg's reason.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openSse, startTestStack, type Stack, type TestBus, type TestDatabase, type TestStack } from "@vp/testkit";
import { client, createCompletedClips, ffmpegProcessesUnder, ffprobeDuration, type Client } from "./helpers";

let db: TestDatabase;
let bus: TestBus;
let stack: Stack;
let api: Client;
let scratch: string;

let fixture: TestStack;

beforeAll(async () => {
  fixture = await startTestStack({ prefix: "vp-e2e-", jobAckWaitMs: 3000 });
  ({ db, bus, stack, scratch } = fixture);
  api = client(stack.baseUrl);
});

afterAll(async () => {
  await fixture?.cleanup();
});

const statusChanges = (events: { event: string; data: unknown }[], nodeId: string) => {
  const seen: string[] = [];
  for (const e of events) {
    const data = e.data as { nodeId?: string; status?: string };
    if (e.event === "node" && data.nodeId === nodeId && seen.at(-1) !== data.status) seen.push(data.status!);
  }
  return seen;
};

describe("merge-videos through HTTP", () => {
  it("merges 2.0 s + 1.5 s + 3.0 s clips (one of another resolution) into a 6.5 s MP4, live over SSE", async () => {
    const { pipeline } = await api.ok("POST", "/pipelines", { title: "E2E merge" });
    await createCompletedClips(api, pipeline.id, [
      { id: "a", durationSeconds: 2.0, width: 320, height: 240 },
      { id: "b", durationSeconds: 1.5, width: 320, height: 240 },
      { id: "c", durationSeconds: 3.0, width: 256, height: 144 },
    ]);
    await api.ok("POST", `/pipelines/${pipeline.id}/nodes`, { id: "merge", title: "Merge", type: "merge-videos", inputs: { segments: ["a", "b", "c"] } });

    const eventsUrl = `${api.root}/pipelines/${pipeline.id}/events`;
    const watcher = openSse(eventsUrl);
    await watcher.waitFor((events) => events.some((e) => e.event === "snapshot"));
    // A second browser that will drop its connection after the node is queued and come back later.
    const dropper = openSse(eventsUrl);
    await dropper.waitFor((events) => events.some((e) => e.event === "snapshot"));

    const execute = await api.call("POST", `/pipelines/${pipeline.id}/nodes/merge/execute`);
    expect(execute.status, JSON.stringify(execute.body)).toBe(200);
    expect(execute.body).toEqual({ status: "queued", job_id: expect.any(String) });

    await dropper.waitFor((events) => statusChanges(events, "merge").includes("queued"));
    await dropper.close();
    const resumeFrom = dropper.lastEventId!;

    await watcher.waitFor((events) => statusChanges(events, "merge").includes("completed"), 60_000);
    expect(statusChanges(watcher.events, "merge")).toEqual(["queued", "in_progress", "completed"]);

    // The reconnecting client receives exactly the events it missed: the same ids, in order, no snapshot.
    const resumed = openSse(eventsUrl, { lastEventId: resumeFrom });
    const missed = watcher.events.filter((e) => e.event === "node" && Number(e.id) > Number(resumeFrom));
    // After them, the pipeline's structure revision (structure changes are not replayed: a client behind reloads).
    await resumed.waitFor((events) => events.length >= missed.length + 1);
    await new Promise((r) => setTimeout(r, 300)); // nothing extra may follow
    await resumed.close();
    await watcher.close();
    expect(resumed.events.filter((e) => e.event === "node").map((e) => e.id)).toEqual(missed.map((e) => e.id));
    const { pipeline: current } = await api.ok("GET", `/pipelines/${pipeline.id}`);
    expect(current.revision).toBeGreaterThan(0);
    expect(resumed.events.filter((e) => e.event !== "node").map((e) => [e.event, e.data])).toEqual([["revision", { revision: current.revision }]]);

    const node = await api.node(pipeline.id, "merge");
    expect(node.status).toBe("completed");
    expect(node.metadata).toMatchObject({
      startedAt: expect.any(String),
      completedAt: expect.any(String),
      jobId: execute.body.job_id,
      cost: expect.any(Number),
    });
    expect(node.output).toMatchObject({
      type: "video",
      s3Key: expect.stringMatching(/^pipelines\/.+\/output\.mp4$/),
      duration: expect.any(Number),
      size: expect.any(Number),
    });
    expect(node.output!.duration as number).toBeCloseTo(6.5, 1);

    // The output route serves those bytes, and ranges of them.
    const full = await fetch(`${api.root}/pipelines/${pipeline.id}/nodes/merge/output`, { headers: await api.authHeader() });
    expect(full.status).toBe(200);
    expect(full.headers.get("accept-ranges")).toBe("bytes");
    const bytes = new Uint8Array(await full.arrayBuffer());
    expect(bytes.length).toBe(node.output!.size);
    const file = join(scratch, "merged.mp4");
    await writeFile(file, bytes);
    expect(Math.abs((await ffprobeDuration(file)) - 6.5)).toBeLessThanOrEqual(0.1);

    const ranged = await fetch(`${api.root}/pipelines/${pipeline.id}/nodes/merge/output`, {
      headers: { range: "bytes=100-1123", ...(await api.authHeader()) },
    });
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get("content-range")).toBe(`bytes 100-1123/${bytes.length}`);
    expect(new Uint8Array(await ranged.arrayBuffer())).toEqual(bytes.slice(100, 1124));
    const suffix = await fetch(`${api.root}/pipelines/${pipeline.id}/nodes/merge/output`, { headers: { range: "bytes=-500", ...(await api.authHeader()) } });
    expect(new Uint8Array(await suffix.arrayBuffer())).toEqual(bytes.slice(bytes.length - 500));
    const beyond = await fetch(`${api.root}/pipelines/${pipeline.id}/nodes/merge/output`, {
      headers: { range: `bytes=${bytes.length}-`, ...(await api.authHeader()) },
    });
    expect(beyond.status).toBe(416);

    // One trace from the HTTP request through scheduler, executor and state-writer (traceparent in NATS headers).
    const logOf = (name: Parameters<typeof stack.services.get>[0], msg: string) =>
      stack.services.get(name)!.logs.find((l) => l.msg === msg && l.pipelineId === pipeline.id && l.nodeId === "merge");
    const traceId = logOf("gateway", "execute queued")?.traceId;
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(logOf("scheduler", "job dispatched")?.traceId).toBe(traceId);
    expect(logOf("executor-ffmpeg", "work completed")?.traceId).toBe(traceId);
    expect(stack.services.get("state-writer")!.logs.find((l) => l.msg === "state committed" && l.nodeId === "merge" && l.status === "completed")?.traceId).toBe(
      traceId,
    );

    const { pipeline: after } = await api.ok("GET", `/pipelines/${pipeline.id}`);
    expect(after.metadata.progress).toMatchObject({ completed: 4, pending: 0, total: 4 });
  });

  it("runs the work once when 20 execute requests race for one ready node", async () => {
    const { pipeline } = await api.ok("POST", "/pipelines", { title: "E2E race" });
    await createCompletedClips(api, pipeline.id, [
      { id: "x", durationSeconds: 1, width: 320, height: 240 },
      { id: "y", durationSeconds: 1, width: 320, height: 240 },
    ]);
    await api.ok("POST", `/pipelines/${pipeline.id}/nodes`, { id: "m", title: "Merge", type: "merge-videos", inputs: { segments: ["x", "y"] } });

    const responses = await Promise.all(Array.from({ length: 20 }, () => api.call("POST", `/pipelines/${pipeline.id}/nodes/m/execute`)));
    const accepted = responses.filter((r) => r.status === 200);
    const jobIds = new Set(accepted.map((r) => r.body.job_id));
    expect(jobIds.size).toBe(1);
    for (const r of responses.filter((r) => r.status !== 200)) {
      expect(r.status).toBe(422);
      expect(r.body.error).toMatch(/^Node not ready \(status: (queued|in_progress|completed)/);
    }
    const node = await api.waitForStatus(pipeline.id, "m", ["completed", "failed"]);
    expect(node.status).toBe("completed");
    expect(node.metadata!.jobId).toBe([...jobIds][0]);

    const executor = stack.services.get("executor-ffmpeg")!;
    const started = executor.logs.filter((l) => l.msg === "work started" && l.pipelineId === pipeline.id && l.nodeId === "m");
    const completed = executor.logs.filter((l) => l.msg === "work completed" && l.pipelineId === pipeline.id && l.nodeId === "m");
    expect(started).toHaveLength(1);
    expect(completed).toHaveLength(1);
  });

  it("completes exactly once after the executor is killed with SIGKILL mid-merge, leaving no orphan ffmpeg", async () => {
    const { pipeline } = await api.ok("POST", "/pipelines", { title: "E2E crash" });
    await createCompletedClips(api, pipeline.id, [
      { id: "p", durationSeconds: 12, width: 640, height: 360 },
      { id: "q", durationSeconds: 12, width: 480, height: 270 },
    ]);
    await api.ok("POST", `/pipelines/${pipeline.id}/nodes`, {
      id: "m",
      title: "Merge",
      type: "merge-videos",
      inputs: { segments: ["p", "q"] },
      config: { reencode: "always" },
    });
    const workRoot = stack.env.WORK_ROOT!;
    const watcher = openSse(`${api.root}/pipelines/${pipeline.id}/events`);
    await api.ok("POST", `/pipelines/${pipeline.id}/nodes/m/execute`);

    // Kill the executor while its ffmpeg is running.
    const deadline = Date.now() + 30_000;
    let running: Awaited<ReturnType<typeof ffmpegProcessesUnder>> = [];
    while (running.length === 0) {
      if (Date.now() > deadline) throw new Error("ffmpeg never started");
      running = await ffmpegProcessesUnder(workRoot);
      if (running.length === 0) await new Promise((r) => setTimeout(r, 25));
    }
    const victim = stack.services.get("executor-ffmpeg")!;
    victim.kill("SIGKILL");
    await victim.exited;
    expect((await api.node(pipeline.id, "m")).status).toBe("in_progress");

    const restarted = await stack.start("executor-ffmpeg");
    const node = await api.waitForStatus(pipeline.id, "m", ["completed", "failed"], 90_000);
    expect(node.status, JSON.stringify(node.metadata)).toBe("completed");
    // The redelivery is counted. Usually exactly once; a pull request the killed process left on the server
    // can take one more delivery before it expires, so the count is attempt - 1, not a fixed number.
    expect(node.metadata!.retries).toBeGreaterThanOrEqual(1);
    expect(node.metadata!.retries).toBe((node.metadata!.attempt as number) - 1);
    expect(node.output!.duration as number).toBeCloseTo(24, 0);

    // Exactly once: one completion committed, one completed work in the new process, no ffmpeg left.
    await watcher.waitFor((events) => statusChanges(events, "m").includes("completed"));
    await new Promise((r) => setTimeout(r, 500));
    await watcher.close();
    const completions = watcher.events.filter(
      (e) => e.event === "node" && (e.data as { nodeId: string; status: string }).nodeId === "m" && (e.data as { status: string }).status === "completed",
    );
    expect(completions).toHaveLength(1);
    expect(restarted.logs.filter((l) => l.msg === "work completed" && l.nodeId === "m")).toHaveLength(1);
    expect(await ffmpegProcessesUnder(workRoot)).toEqual([]);
  });

  it("fails a node with ffmpeg's reason when the uploaded file is not media, visibly over SSE", async () => {
    const { pipeline } = await api.ok("POST", "/pipelines", { title: "E2E bad upload" });
    await api.ok("POST", `/pipelines/${pipeline.id}/nodes`, { id: "bad", title: "Not a video", type: "asset", asset: { type: "video" } });
    await api.ok("PUT", `/pipelines/${pipeline.id}/nodes/bad/asset`, new TextEncoder().encode("this is not an mp4\n".repeat(100)), {
      "content-type": "video/mp4",
    });
    const watcher = openSse(`${api.root}/pipelines/${pipeline.id}/events`);
    await api.ok("POST", `/pipelines/${pipeline.id}/nodes/bad/execute`);
    const events = await watcher.waitFor((all) => statusChanges(all, "bad").includes("failed"));
    await watcher.close();
    const failed = events.find((e) => e.event === "node" && (e.data as { status: string }).status === "failed")!.data as { metadata: { error: string } };
    expect(failed.metadata.error).toMatch(/Invalid data found when processing input|moov atom not found/);
    expect(failed.metadata.error).not.toContain(stack.env.STORAGE_ROOT!); // no server paths leak to users
    const node = await api.node(pipeline.id, "bad");
    expect(node.status).toBe("failed");
    expect(node.metadata!.retries ?? 0).toBe(0); // not retried: no retry can fix the input
    const { pipeline: after } = await api.ok("GET", `/pipelines/${pipeline.id}`);
    expect(after.metadata.progress).toMatchObject({ failed: 1, total: 1 });
  });
});
