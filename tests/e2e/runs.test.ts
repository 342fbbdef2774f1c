/**
 * Pipeline runs end to end, through HTTP only, with the five services as processes: run all with a
 * failing branch, run to here on a chain of 4, and one 422 listing every graph problem before anything runs.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeTestClip } from "@vp/media";
import { insertNodeFixture, openSse, type Stack, type TestBus, type TestDatabase, startTestStack, type TestStack } from "@vp/testkit";
import { client, ffmpegProcessesUnder, type Client } from "./helpers";

let db: TestDatabase;
let bus: TestBus;
let stack: Stack;
let api: Client;
let scratch: string;
let clip: Uint8Array;

let fixture: TestStack;

beforeAll(async () => {
  fixture = await startTestStack({ prefix: "vp-e2e-runs-", jobAckWaitMs: 3000 });
  ({ db, bus, stack, scratch } = fixture);
  api = client(stack.baseUrl);
  const path = join(scratch, "clip.mp4");
  await makeTestClip({ path, durationSeconds: 1, width: 160, height: 120, fps: 15, audio: true });
  clip = new Uint8Array(await readFile(path));
});

afterAll(async () => {
  await fixture?.cleanup();
});

/** A video asset with an uploaded file, not executed (a run executes it). */
async function videoAsset(pipelineId: string, id: string, bytes: Uint8Array = clip) {
  await api.ok("POST", `/pipelines/${pipelineId}/nodes`, { id, title: id, type: "asset", asset: { type: "video" } });
  await api.ok("PUT", `/pipelines/${pipelineId}/nodes/${id}/asset`, bytes, { "content-type": "video/mp4" });
}
const merge = (pipelineId: string, id: string, segments: string[]) =>
  api.ok("POST", `/pipelines/${pipelineId}/nodes`, { id, title: id, type: "merge-videos", inputs: { segments } });

async function waitForRun(pipelineId: string, runId: string, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { runs } = await api.ok("GET", `/pipelines/${pipelineId}/runs`);
    const run = runs.find((r: { id: string }) => r.id === runId);
    if (run && run.status !== "running") return run;
    if (Date.now() > deadline) throw new Error(`run ${runId} still ${run?.status} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

describe("pipeline runs through HTTP", () => {
  it("run all: every node in dependency order; a failing branch cancels its dependants with the reason, the other completes", async () => {
    const { pipeline } = await api.ok("POST", "/pipelines", { title: "Run all" });
    const P = pipeline.id;
    await videoAsset(P, "a");
    await videoAsset(P, "b");
    await videoAsset(P, "bad", new TextEncoder().encode("definitely not a video"));
    await api.ok("POST", `/pipelines/${P}/nodes`, { id: "t", title: "t", type: "asset", asset: { type: "text", content: "hello" } });
    await merge(P, "m1", ["a", "b"]);
    await merge(P, "m2", ["m1", "b"]);
    await merge(P, "mb", ["bad", "a"]);
    await merge(P, "mb2", ["mb", "m2"]);

    const watcher = openSse(`${api.root}/pipelines/${P}/events`);
    await watcher.waitFor((events) => events.some((e) => e.event === "snapshot"));
    const res = await api.call("POST", `/pipelines/${P}/execute`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toEqual({
      status: "running",
      run_id: expect.any(String),
      node_ids: ["a", "b", "bad", "t", "m1", "m2", "mb", "mb2"],
      estimate: expect.objectContaining({ withinBudget: true, maxCost: null }),
    });

    const run = await waitForRun(P, res.body.run_id);
    expect(run).toMatchObject({ kind: "all", status: "failed", metadata: { counts: { completed: 5, failed: 1, cancelled: 2 } } });
    const nodes = Object.fromEntries((await api.ok("GET", `/pipelines/${P}/nodes`)).nodes.map((n: { id: string }) => [n.id, n]));
    expect(Object.fromEntries(Object.entries(nodes).map(([id, n]: [string, any]) => [id, n.status]))).toEqual({
      a: "completed",
      b: "completed",
      bad: "failed",
      t: "completed",
      m1: "completed",
      m2: "completed",
      mb: "cancelled",
      mb2: "cancelled",
    });
    expect(nodes.mb.metadata).toMatchObject({ error: "upstream bad failed", runId: res.body.run_id });
    expect(nodes.mb2.metadata).toMatchObject({ error: "upstream bad failed" });
    // m2 started only after m1 completed.
    expect(Date.parse(nodes.m2.metadata.queuedAt)).toBeGreaterThanOrEqual(Date.parse(nodes.m1.metadata.completedAt));
    const { pipeline: after } = await api.ok("GET", `/pipelines/${P}`);
    expect(after.metadata.progress).toMatchObject({ completed: 5, failed: 1, cancelled: 2, pending: 0, in_progress: 0, queued: 0, total: 8 });

    await watcher.waitFor((events) => events.some((e) => e.event === "node" && (e.data as any).nodeId === "mb2" && (e.data as any).status === "cancelled"));
    const m2 = watcher.events.filter((e) => e.event === "node" && (e.data as any).nodeId === "m2").map((e) => (e.data as any).status);
    expect([...new Set(m2)]).toEqual(["queued", "in_progress", "completed"]);
    await watcher.close();

    // Retry: a completed node is refused; the failed one is reset (its error kept in history) and rerun with its
    // dependants. Its file is still not a video, so it fails again and they are cancelled again.
    expect(await api.call("POST", `/pipelines/${P}/nodes/m1/retry`)).toMatchObject({
      status: 422,
      body: { error: "Node cannot be retried (status: completed); only failed or cancelled nodes are" },
    });
    const retry = await api.call("POST", `/pipelines/${P}/nodes/bad/retry`, { downstream: true });
    expect(retry.status, JSON.stringify(retry.body)).toBe(200);
    expect(retry.body.node_ids).toEqual(["bad", "mb", "mb2"]);
    expect(await waitForRun(P, retry.body.run_id)).toMatchObject({
      kind: "retry",
      target_node_id: "bad",
      status: "failed",
      metadata: { counts: { failed: 1, cancelled: 2 } },
    });
    const bad = await api.node(P, "bad");
    expect(bad.metadata).toMatchObject({ runId: retry.body.run_id, error: expect.stringContaining("not a readable media file") });
    expect(bad.metadata!.history).toEqual([
      expect.objectContaining({ status: "failed", error: expect.stringContaining("not a readable media file"), runId: res.body.run_id }),
    ]);
    const mb = await api.node(P, "mb");
    expect(mb).toMatchObject({ status: "cancelled", metadata: { runId: retry.body.run_id, error: "upstream bad failed" } });
    expect(mb.metadata!.history).toEqual([expect.objectContaining({ status: "cancelled", error: "upstream bad failed" })]);
    expect((await api.ok("GET", `/pipelines/${P}/runs`)).runs.map((r: { kind: string }) => r.kind)).toEqual(["retry", "all"]);
  });

  it("run to here on the last node of a chain of 4 runs exactly those 4", async () => {
    const { pipeline } = await api.ok("POST", "/pipelines", { title: "Run to here" });
    const P = pipeline.id;
    await videoAsset(P, "c");
    await merge(P, "c1", ["c", "c"]);
    await merge(P, "c2", ["c1", "c"]);
    await merge(P, "c3", ["c2", "c1"]);
    await merge(P, "after", ["c3", "c"]);
    await api.ok("POST", `/pipelines/${P}/nodes`, { id: "side", title: "side", type: "asset", asset: { type: "text", content: "x" } });

    const res = await api.call("POST", `/pipelines/${P}/nodes/c3/execute`, { upstream: true });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.node_ids).toEqual(["c", "c1", "c2", "c3"]);
    expect(await waitForRun(P, res.body.run_id)).toMatchObject({
      kind: "upstream",
      target_node_id: "c3",
      status: "completed",
      node_ids: ["c", "c1", "c2", "c3"],
    });
    const statuses = Object.fromEntries((await api.ok("GET", `/pipelines/${P}/nodes`)).nodes.map((n: { id: string; status: string }) => [n.id, n.status]));
    expect(statuses).toEqual({ c: "completed", c1: "completed", c2: "completed", c3: "completed", after: "pending", side: "pending" });

    // Nothing left upstream of c3: a second run to here is refused; a plain execute body is validated.
    expect(await api.call("POST", `/pipelines/${P}/nodes/c3/execute`, { upstream: true })).toMatchObject({
      status: 422,
      body: { error: "Nothing to run: node c3 is already completed (force makes it again)" },
    });
    expect((await api.call("POST", `/pipelines/${P}/nodes/after/execute`, { upstream: "yes" })).status).toBe(422);
    const { runs } = await api.ok("GET", `/pipelines/${P}/runs`);
    expect(runs).toHaveLength(1);
  });

  it("a disabled node: run all skips it and what is downstream of it; executing it or a dependant is refused with the reason", async () => {
    const { pipeline } = await api.ok("POST", "/pipelines", { title: "Disabled nodes" });
    const P = pipeline.id;
    await videoAsset(P, "d");
    await merge(P, "m", ["d", "d"]);
    // A disconnected node that would fail every run, switched off.
    await videoAsset(P, "broken", new TextEncoder().encode("definitely not a video"));
    await merge(P, "after", ["broken", "d"]);
    const { node } = await api.ok("PATCH", `/pipelines/${P}/nodes/broken`, { disabled: true });
    expect(node).toMatchObject({ id: "broken", disabled: true, status: "pending" });
    expect((await db.admin.query("select disabled from video_production_nodes where pipeline_id = $1 and id = 'broken'", [P])).rows[0]).toEqual({
      disabled: true,
    });

    const { estimate } = await api.ok("GET", `/pipelines/${P}/estimate`);
    expect(estimate.nodes.map((n: { nodeId: string }) => n.nodeId).sort()).toEqual(["d", "m"]);
    const res = await api.call("POST", `/pipelines/${P}/execute`, {});
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.node_ids).toEqual(["d", "m"]);
    expect(await waitForRun(P, res.body.run_id)).toMatchObject({ status: "completed", node_ids: ["d", "m"] });
    const statuses = Object.fromEntries((await api.ok("GET", `/pipelines/${P}/nodes`)).nodes.map((n: { id: string; status: string }) => [n.id, n.status]));
    expect(statuses).toEqual({ d: "completed", m: "completed", broken: "pending", after: "pending" });

    expect(await api.call("POST", `/pipelines/${P}/nodes/broken/execute`)).toMatchObject({
      status: 422,
      body: { error: 'Node "broken" is disabled: enable it to run it' },
    });
    expect(await api.call("POST", `/pipelines/${P}/nodes/after/execute`, { upstream: true })).toMatchObject({
      status: 422,
      body: { error: 'Node "after" cannot run: node "broken" upstream of it is disabled (enable it first)' },
    });
    // Enabled again, it runs (and fails on its bytes, as it would have all along).
    await api.ok("PATCH", `/pipelines/${P}/nodes/broken`, { disabled: false });
    const again = await api.call("POST", `/pipelines/${P}/nodes/broken/execute`);
    expect(again.status, JSON.stringify(again.body)).toBe(200);
    const { runs } = await api.ok("GET", `/pipelines/${P}/runs`);
    expect(runs).toHaveLength(1);
  });

  it("graph errors: a cycle, a dangling input and a type mismatch in one pipeline -> one 422 listing all, nothing runs", async () => {
    const { pipeline } = await api.ok("POST", "/pipelines", { title: "Broken" });
    const P = pipeline.id;
    await videoAsset(P, "v");
    await api.ok("POST", `/pipelines/${P}/nodes`, { id: "txt", title: "txt", type: "asset", asset: { type: "text", content: "x" } });
    // The editor's routes refuse these edges, so they are written behind its back (an old or imported graph).
    await insertNodeFixture(db.admin, { pipelineId: P, id: "x", type: "merge-videos", inputs: { segments: ["v", "y"] } });
    await insertNodeFixture(db.admin, { pipelineId: P, id: "y", type: "merge-videos", inputs: { segments: ["v", "x"] } });
    await insertNodeFixture(db.admin, { pipelineId: P, id: "dangling", type: "merge-videos", inputs: { segments: ["v", "ghost"] } });
    await insertNodeFixture(db.admin, { pipelineId: P, id: "mismatch", type: "merge-videos", inputs: { segments: ["v", "txt"] } });

    const res = await api.call("POST", `/pipelines/${P}/execute`);
    expect(res.status).toBe(422);
    expect(res.body.problems).toEqual([
      // Nodes by title, the id after it (the fixtures are all titled "Test Node").
      { nodeId: "x", message: 'is part of a cycle: "Test Node" (x) -> "Test Node" (y) -> "Test Node" (x)' },
      { nodeId: "y", message: 'is part of a cycle: "Test Node" (x) -> "Test Node" (y) -> "Test Node" (x)' },
      { nodeId: "dangling", slot: "segments", message: 'input "segments" refers to node "ghost", which does not exist in this pipeline' },
      { nodeId: "mismatch", slot: "segments", message: 'input "segments" accepts video, but node "txt" produces text' },
    ]);
    expect(res.body.error).toContain('"Test Node" (x): is part of a cycle');
    expect((await api.ok("GET", `/pipelines/${P}/runs`)).runs).toEqual([]);
    expect((await api.node(P, "v")).status).toBe("pending");
  });

  it("cancel during a running merge kills ffmpeg within 2 s; its dependant is cancelled and the run ends cancelled", async () => {
    const { pipeline } = await api.ok("POST", "/pipelines", { title: "Cancel" });
    const P = pipeline.id;
    const long = async (id: string, width: number, height: number) => {
      const path = join(scratch, `${id}.mp4`);
      await makeTestClip({ path, durationSeconds: 12, width, height, fps: 30, audio: true });
      await videoAsset(P, id, new Uint8Array(await readFile(path)));
    };
    await long("p", 640, 360);
    await long("q", 480, 270); // another resolution: the merge re-encodes, so it runs for seconds
    await merge(P, "m", ["p", "q"]);
    await merge(P, "after", ["m", "p"]);
    const res = await api.call("POST", `/pipelines/${P}/execute`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);

    await api.waitForStatus(P, "m", ["in_progress"], 60_000);
    const workRoot = join(scratch, "work");
    const deadline = Date.now() + 30_000;
    while ((await ffmpegProcessesUnder(workRoot)).length === 0) {
      if (Date.now() > deadline) throw new Error("merge ffmpeg never started");
      await new Promise((r) => setTimeout(r, 50));
    }
    const cancelledAt = Date.now();
    expect(await api.call("POST", `/pipelines/${P}/nodes/m/cancel`)).toMatchObject({ status: 200, body: { status: "cancelled", cancelled: ["m"] } });
    while ((await ffmpegProcessesUnder(workRoot)).length > 0) {
      expect(Date.now() - cancelledAt, "ffmpeg still running 2 s after the cancel").toBeLessThan(2000);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(await waitForRun(P, res.body.run_id)).toMatchObject({ status: "cancelled", metadata: { counts: { completed: 2, cancelled: 2 } } });
    expect(await api.node(P, "m")).toMatchObject({ status: "cancelled", metadata: { error: "cancelled by user", cancelledBy: "user" } });
    expect(await api.node(P, "after")).toMatchObject({ status: "cancelled", metadata: { error: "upstream m was cancelled" } });
    // A finished node cannot be cancelled; a pipeline cancel with nothing running cancels nothing.
    expect((await api.call("POST", `/pipelines/${P}/nodes/p/cancel`)).status).toBe(422);
    expect(await api.call("POST", `/pipelines/${P}/cancel`)).toMatchObject({ status: 200, body: { cancelled: [] } });
  });

  it("a run survives a SIGKILLed scheduler: the restarted one rebuilds it from the database and finishes it, each node run once", async () => {
    const { pipeline } = await api.ok("POST", "/pipelines", { title: "Restart" });
    const P = pipeline.id;
    await videoAsset(P, "a");
    await merge(P, "m1", ["a", "a"]);
    await merge(P, "m2", ["m1", "a"]);
    // force: the same merges of the same clip are in the cache from the tests above; this one must execute them.
    const res = await api.call("POST", `/pipelines/${P}/execute`, { force: true });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const scheduler = stack.services.get("scheduler")!;
    scheduler.kill("SIGKILL");
    await scheduler.exited;
    // "a" completes while no scheduler is there to see it; nothing else can start.
    await api.waitForStatus(P, "a", ["completed"], 60_000);
    expect((await api.node(P, "m1")).status).toBe("pending");

    await stack.start("scheduler");
    const run = await waitForRun(P, res.body.run_id);
    expect(run).toMatchObject({ status: "completed", metadata: { counts: { completed: 3 } } });
    for (const id of ["a", "m1", "m2"]) {
      expect((await api.node(P, id)).metadata).toMatchObject({ jobId: `${res.body.run_id}-${id}`, runId: res.body.run_id, retries: 0 });
    }
    expect(stack.services.get("scheduler")!.logs.some((l) => l.msg === "run resumed" && l.runId === res.body.run_id)).toBe(true);
  });
});
