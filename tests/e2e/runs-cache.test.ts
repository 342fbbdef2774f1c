/**
 * Pipeline runs with the cache and budgets, end to end: the five services as
 * processes, local AI providers (espeak-ng, the presenter card, the prompt animation), Remotion on Debian's
 * Chromium, ffmpeg, and the fake paid providers as real HTTP servers. HTTP and SSE only.
 */
import { execFile } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { makeTestClip, type TestClipOptions } from "@vp/media";
import { openSse, startFakeProviders, startTestStack, type FakeProviders, type SseEvent, type Stack, type TestStack } from "@vp/testkit";
import { client, ffmpegProcessesUnder, type Client } from "./helpers";

const exec = promisify(execFile);

let fixture: TestStack;
let fakes: FakeProviders;
let stack: Stack;
let api: Client;
let scratch: string;

beforeAll(async () => {
  fakes = await startFakeProviders({ pollsUntilDone: 1 });
  fixture = await startTestStack({
    prefix: "vp-e2e-runs-cache-",
    jobAckWaitMs: 5000,
    env: { ...fakes.env, PROVIDER_POLL_INTERVAL_MS: "100", PROVIDER_HTTP_RETRIES: "0" },
  });
  ({ stack, scratch } = fixture);
  api = client(stack.baseUrl);
});

afterAll(async () => {
  await fixture?.cleanup();
  await fakes?.close();
});

beforeEach(() => fakes.reset());

type ApiNode = { id: string; type: string; status: string; metadata: Record<string, any> | null; output: Record<string, any> | null };

async function newPipeline(title: string, config?: Record<string, unknown>): Promise<string> {
  return (await api.ok("POST", "/pipelines", { title, ...(config ? { config } : {}) })).pipeline.id;
}
const add = (P: string, node: Record<string, unknown>) => api.ok("POST", `/pipelines/${P}/nodes`, { title: String(node.id), ...node });

/** A video asset with its file uploaded (not executed: the run ingests it). */
async function clipAsset(P: string, id: string, clip: Omit<TestClipOptions, "path">) {
  const path = join(scratch, `${P}-${id}.mp4`);
  await makeTestClip({ ...clip, path });
  await add(P, { id, type: "asset", asset: { type: "video" } });
  await api.ok("PUT", `/pipelines/${P}/nodes/${id}/asset`, new Uint8Array(await readFile(path)), { "content-type": "video/mp4" });
}

async function nodes(P: string): Promise<Record<string, ApiNode>> {
  return Object.fromEntries(((await api.ok("GET", `/pipelines/${P}/nodes`)).nodes as ApiNode[]).map((n) => [n.id, n]));
}

async function waitForRun(P: string, runId: string, timeoutMs = 240_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { runs } = await api.ok("GET", `/pipelines/${P}/runs`);
    const run = runs.find((r: { id: string }) => r.id === runId);
    if (run && run.status !== "running") return run;
    if (Date.now() > deadline) throw new Error(`run ${runId} still ${run?.status} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function runAll(P: string, body?: Record<string, unknown>) {
  const res = await api.call("POST", `/pipelines/${P}/execute`, body);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return { runId: res.body.run_id as string, estimate: res.body.estimate, run: await waitForRun(P, res.body.run_id) };
}

/** Nodes whose work ran on an executor for this run ("work started" logged by an executor with the run's job id). */
function executedIn(runId: string): string[] {
  const ids = new Set<string>();
  for (const name of ["executor-ffmpeg", "executor-ai"] as const) {
    for (const line of stack.services.get(name)!.logs) {
      if (line.msg === "work started" && typeof line.jobId === "string" && line.jobId.startsWith(`${runId}-`)) ids.add(String(line.nodeId));
    }
  }
  return [...ids].sort();
}

const nodeStatuses = (events: SseEvent[], nodeId: string) =>
  events.filter((e) => e.event === "node" && (e.data as { nodeId?: string }).nodeId === nodeId).map((e) => (e.data as { status: string }).status);

async function downloadAndDecode(P: string, nodeId: string): Promise<string> {
  const response = await fetch(`${api.root}/pipelines/${P}/nodes/${nodeId}/output`, { headers: await api.authHeader() });
  expect(response.status).toBe(200);
  const file = join(scratch, `${P}-${nodeId}-output.mp4`);
  await writeFile(file, Buffer.from(await response.arrayBuffer()));
  // Decoding every frame proves it plays, not just that the header parses.
  const { stderr } = await exec("ffmpeg", ["-v", "error", "-i", file, "-f", "null", "-"]);
  expect(stderr).toBe("");
  return file;
}

/**
 * Twelve nodes, every type, local providers only:
 *   clipA, clipB, clipC (video assets), script (text asset), vo (voiceover), head (talking head), anim (animation),
 *   code (render-code), merged = merge(clipA, anim, clipB), mixed = mix(merged, vo),
 *   pip = compose(mixed, [head, code]), final = compose(pip, [clipC]).
 */
async function twelveNodes(P: string) {
  const clip = { width: 320, height: 180, fps: 15, audio: true } as const;
  await clipAsset(P, "clipA", { ...clip, durationSeconds: 2, color: "navy" });
  await clipAsset(P, "clipB", { ...clip, durationSeconds: 2, color: "teal" });
  await clipAsset(P, "clipC", { ...clip, durationSeconds: 3, color: "orange" });
  await add(P, { id: "script", type: "asset", asset: { type: "text", content: "Welcome to the pipeline. Every node runs once." } });
  await add(P, { id: "vo", type: "generate-voiceover", inputs: { script: ["script"] }, config: { provider: "local", voiceId: "en-us" } });
  await add(P, { id: "head", type: "talking-head", inputs: { script: ["script"] }, config: { provider: "local", width: 320, height: 180 } });
  await add(P, { id: "anim", type: "generate-animation", config: { provider: "local", prompt: "a lighthouse at night", durationSeconds: 2 } });
  await add(P, {
    id: "code",
    type: "render-code",
    config: {
      code: "const run = await pipeline.execute();\nconsole.log(run.status);",
      language: "typescript",
      typingSpeed: 60,
      width: 320,
      height: 180,
      fps: 15,
    },
  });
  await add(P, { id: "merged", type: "merge-videos", inputs: { segments: ["clipA", "anim", "clipB"] }, config: { width: 320, height: 180, fps: 15 } });
  await add(P, { id: "mixed", type: "mix-audio", inputs: { video: ["merged"], audio: ["vo"] }, config: { lengthMismatch: "pad" } });
  await add(P, {
    id: "pip",
    type: "compose-video",
    inputs: { background: ["mixed"], overlays: ["head", "code"] },
    config: {
      overlays: [
        { position: "top-right", size: 0.3 },
        { position: "bottom-left", size: 0.3 },
      ],
    },
  });
  await add(P, {
    id: "final",
    type: "compose-video",
    inputs: { background: ["pip"], overlays: ["clipC"] },
    config: { overlays: [{ position: "bottom-right", size: 0.25 }] },
  });
}
const TWELVE = ["clipA", "clipB", "clipC", "script", "vo", "head", "anim", "code", "merged", "mixed", "pip", "final"];
const INPUTS: Record<string, string[]> = {
  vo: ["script"],
  head: ["script"],
  merged: ["clipA", "anim", "clipB"],
  mixed: ["merged", "vo"],
  pip: ["mixed", "head", "code"],
  final: ["pip", "clipC"],
};

describe("runs with the cache and budgets", () => {
  let P12: string;

  it("a 12-node pipeline of every type runs with one request in dependency order; SSE sees every transition; the final compose plays", async () => {
    P12 = await newPipeline("Twelve nodes");
    await twelveNodes(P12);
    const watcher = openSse(`${api.root}/pipelines/${P12}/events`);
    await watcher.waitFor((events) => events.some((e) => e.event === "snapshot"));

    const { runId, run, estimate } = await runAll(P12);
    expect(estimate).toMatchObject({
      withinBudget: true,
      maxCost: null,
      nodes: expect.arrayContaining([expect.objectContaining({ nodeId: "vo", source: "execute" })]),
    });
    expect(run, JSON.stringify(run)).toMatchObject({ status: "completed", metadata: { counts: { completed: 12 }, executed: 12, cached: 0 } });
    await watcher.waitFor((events) => nodeStatuses(events, "final").includes("completed"), 30_000);
    await watcher.close();

    // Every node went pending -> queued -> in_progress -> completed on the stream, and only after its inputs completed.
    const completedAt = new Map<string, number>();
    watcher.events.forEach((e, i) => {
      const d = e.data as { nodeId?: string; status?: string };
      if (e.event === "node" && d.status === "completed" && d.nodeId && !completedAt.has(d.nodeId)) completedAt.set(d.nodeId, i);
    });
    for (const id of TWELVE) {
      const seen = nodeStatuses(watcher.events, id).filter((s, i, all) => s !== all[i - 1]);
      expect(seen, id).toEqual(["queued", "in_progress", "completed"]);
      for (const up of INPUTS[id] ?? []) expect(completedAt.get(up)!, `${up} before ${id}`).toBeLessThan(completedAt.get(id)!);
    }
    expect(executedIn(runId)).toEqual([...TWELVE].sort());

    const all = await nodes(P12);
    for (const id of TWELVE) expect(all[id]!.output!.contentHash, id).toMatch(/^[a-f0-9]{64}$/);
    expect(all.final!.output).toMatchObject({ type: "video", width: 320, height: 180 });
    await downloadAndDecode(P12, "final");
    const pipeline = (await api.ok("GET", `/pipelines/${P12}`)).pipeline;
    expect(pipeline.metadata).toMatchObject({ progress: { completed: 12, total: 12 }, lastRunId: runId });
  }, 300_000);

  it("after a config edit only that node and its dependants execute; an identical rerun executes nothing and reports the cost saved; the cache is shared and survives a restart of every service", async () => {
    // Edit the voiceover: vo, then mixed, pip and final (downstream of it) execute; the rest are current.
    await api.ok("PATCH", `/pipelines/${P12}/nodes/vo`, { config: { provider: "local", voiceId: "en-gb" } });
    const second = await runAll(P12);
    expect(executedIn(second.runId)).toEqual(["final", "mixed", "pip", "vo"]);
    expect(second.run).toMatchObject({ status: "completed", metadata: { executed: 4, cached: 0, upToDate: 8 } });
    expect((await nodes(P12)).vo!.metadata!.history).toEqual([expect.objectContaining({ status: "completed", reason: "stale" })]);

    // The same again: nothing executes; what it did not pay again is reported.
    const before = await nodes(P12);
    const third = await runAll(P12);
    expect(executedIn(third.runId)).toEqual([]);
    const value = TWELVE.reduce((sum, id) => sum + (before[id]!.metadata!.cost ?? 0) + (before[id]!.metadata!.costSaved ?? 0), 0);
    expect(value).toBeGreaterThan(0); // local AI work is priced per compute second
    expect(third.run).toMatchObject({ status: "completed", metadata: { executed: 0, upToDate: 12 } });
    expect(third.run.metadata.costSaved).toBeCloseTo(value, 6);

    // Every service restarted: an imported copy of the pipeline (another pipeline, same files) comes from the cache.
    for (const name of ["gateway", "scheduler", "state-writer", "executor-ffmpeg", "executor-ai"] as const) {
      await stack.services.get(name)!.stop();
      await stack.start(name);
    }
    api = client(stack.baseUrl);
    const document = await api.ok("GET", `/pipelines/${P12}/export`);
    const imported = (await api.ok("POST", "/pipelines/import", { ...document, title: "Imported copy" })).pipeline.id as string;
    // Storage keys never travel in a document: the same three files are uploaded again.
    for (const id of ["clipA", "clipB", "clipC"]) {
      await api.ok("PUT", `/pipelines/${imported}/nodes/${id}/asset`, new Uint8Array(await readFile(join(scratch, `${P12}-${id}.mp4`))), {
        "content-type": "video/mp4",
      });
    }
    const copy = await runAll(imported);
    const copied = await nodes(imported);
    const fromCache = TWELVE.filter((id) => copied[id]!.metadata!.cached === true);
    // The uploaded files are new objects in the copy, so the assets ingest again (cheap); their bytes are the same,
    // so everything made from them is found in the cache.
    expect(fromCache.sort()).toEqual(["anim", "code", "final", "head", "merged", "mixed", "pip", "script", "vo"].sort());
    expect(executedIn(copy.runId).filter((id) => !["clipA", "clipB", "clipC"].includes(id))).toEqual([]);
    expect(copied.final!.metadata).toMatchObject({ cached: true, cachedFrom: { pipelineId: P12, nodeId: "final", runId: second.runId }, cost: 0 });
    expect(copied.final!.output!.s3Key).toBe((await nodes(P12)).final!.output!.s3Key);
    expect(copy.run.metadata.costSaved).toBeGreaterThan(0);
    await downloadAndDecode(imported, "final");

    // force: every member executes again, the ones up to date and the ones whose key is in the cache alike.
    await api.ok("PATCH", `/pipelines/${imported}/nodes/vo`, { config: { provider: "local", voiceId: "en-us" } });
    const forced = await runAll(imported, { force: true });
    expect(executedIn(forced.runId)).toEqual([...TWELVE].sort());
    const remade = await nodes(imported);
    for (const id of TWELVE) expect(remade[id]!.metadata, id).toMatchObject({ runId: forced.runId, jobId: `${forced.runId}-${id}` });
    for (const id of TWELVE) expect(remade[id]!.metadata!.cached, id).not.toBe(true);
    expect(forced.estimate.nodes.map((n: { source: string }) => n.source)).toEqual(TWELVE.map(() => "execute"));

    // A fresh take of one completed node: run to here, forced, makes it and what it is made from again.
    const take = await api.call("POST", `/pipelines/${imported}/nodes/vo/execute`, { upstream: true, force: true });
    expect(take.status, JSON.stringify(take.body)).toBe(200);
    await waitForRun(imported, take.body.run_id);
    expect(executedIn(take.body.run_id)).toEqual(["script", "vo"]);
    // Without force the same request is refused: the node is up to date.
    const again = await api.call("POST", `/pipelines/${imported}/nodes/vo/execute`, { upstream: true });
    expect(again).toMatchObject({ status: 422, body: { error: "Nothing to run: node vo is already completed (force makes it again)" } });
  }, 300_000);

  it("a paid provider's 400 fails its node; dependants end cancelled with the reason, the other branch completes, progress counts are right", async () => {
    const P = await newPipeline("Failing branch");
    await add(P, { id: "script", type: "asset", asset: { type: "text", content: "A narration the provider refuses." } });
    await add(P, { id: "vo", type: "generate-voiceover", inputs: { script: ["script"] }, config: { provider: "elevenlabs" } });
    await clipAsset(P, "clip", { durationSeconds: 2, width: 160, height: 120, fps: 15, audio: true });
    await clipAsset(P, "clip2", { durationSeconds: 1, width: 160, height: 120, fps: 15, audio: true });
    await add(P, { id: "narrated", type: "mix-audio", inputs: { video: ["clip"], audio: ["vo"] } });
    await add(P, { id: "both", type: "merge-videos", inputs: { segments: ["narrated", "clip2"] } });
    await add(P, { id: "joined", type: "merge-videos", inputs: { segments: ["clip", "clip2"] } });
    fakes.elevenlabs.fail("create", { kind: "reject", status: 400, message: "voice_not_found: the voice does not exist" });

    const { run } = await runAll(P);
    expect(run.status).toBe("failed");
    const all = await nodes(P);
    expect(all.vo).toMatchObject({ status: "failed" });
    expect(all.vo!.metadata!.error).toContain("voice_not_found");
    expect(all.narrated).toMatchObject({ status: "cancelled", metadata: { error: "upstream vo failed" } });
    expect(all.both).toMatchObject({ status: "cancelled", metadata: { error: "upstream vo failed" } });
    expect(all.joined!.status).toBe("completed");
    const pipeline = (await api.ok("GET", `/pipelines/${P}`)).pipeline;
    expect(pipeline.metadata.progress).toEqual({ completed: 4, failed: 1, cancelled: 2, pending: 0, queued: 0, in_progress: 0, total: 7 });
    expect(run.metadata.counts).toMatchObject({ completed: 4, failed: 1, cancelled: 2 });
  }, 120_000);

  it("maxCost below the estimate: 422 with the per-node estimates and nothing executed; the estimate route agrees", async () => {
    const P = await newPipeline("Budget", { maxCost: 0.05 });
    const script = "This presenter speaks for a good while, which is what makes the estimate exceed the budget. ".repeat(6);
    await add(P, { id: "script", type: "asset", asset: { type: "text", content: script } });
    await add(P, { id: "head", type: "talking-head", inputs: { script: ["script"] }, config: { provider: "heygen", avatarId: "a1", voiceId: "v1" } });
    await add(P, { id: "vo", type: "generate-voiceover", inputs: { script: ["script"] }, config: { provider: "elevenlabs" } });

    const res = await api.call("POST", `/pipelines/${P}/execute`);
    expect(res.status).toBe(422);
    expect(res.body.error).toMatch(/^Estimated cost \$\d+\.\d\d exceeds the pipeline's budget \(maxCost\) of \$0\.05: head \$\d+\.\d\d, vo \$\d+\.\d\d$/);
    expect(res.body.estimate).toMatchObject({
      maxCost: 0.05,
      withinBudget: false,
      nodes: [
        { nodeId: "script", estimatedCost: 0, source: "execute" },
        { nodeId: "head", source: "execute" },
        { nodeId: "vo", source: "execute" },
      ],
    });
    const [head, vo] = [res.body.estimate.nodes[1].estimatedCost, res.body.estimate.nodes[2].estimatedCost];
    expect(head).toBeGreaterThan(0.05);
    expect(vo).toBeGreaterThan(0);
    expect(res.body.estimate.estimatedTotalCost).toBeCloseTo(head + vo, 6);
    const estimate = await api.ok("GET", `/pipelines/${P}/estimate`);
    expect(estimate).toEqual({ estimate: res.body.estimate, problems: [] });

    expect((await api.ok("GET", `/pipelines/${P}/runs`)).runs).toEqual([]);
    expect(Object.values(await nodes(P)).map((n) => n.status)).toEqual(["pending", "pending", "pending"]);
    expect(fakes.heygen.calls).toEqual([]);
    expect(fakes.elevenlabs.calls).toEqual([]);
  });

  it("cancel during a running compose-video kills ffmpeg within 2 s and leaves no child; a pipeline cancel stops every queued node", async () => {
    const P = await newPipeline("Cancel compose");
    await clipAsset(P, "bg", { durationSeconds: 30, width: 1280, height: 720, fps: 25 });
    await clipAsset(P, "ov", { durationSeconds: 10, width: 640, height: 360, fps: 25, color: "orange" });
    await add(P, {
      id: "pip",
      type: "compose-video",
      inputs: { background: ["bg"], overlays: ["ov"] },
      config: { overlays: [{ position: "bottom-right", size: 0.3, cornerRadius: 12 }] },
    });
    await add(P, { id: "after", type: "merge-videos", inputs: { segments: ["pip", "bg"] } });

    const started = await api.call("POST", `/pipelines/${P}/execute`);
    expect(started.status).toBe(200);
    await api.waitForStatus(P, "pip", ["in_progress"], 60_000);
    const workRoot = join(scratch, "work");
    const deadline = Date.now() + 30_000;
    while ((await ffmpegProcessesUnder(workRoot)).length === 0) {
      if (Date.now() > deadline) throw new Error("compose-video's ffmpeg never started");
      await new Promise((r) => setTimeout(r, 50));
    }
    const cancelledAt = Date.now();
    expect(await api.ok("POST", `/pipelines/${P}/nodes/pip/cancel`)).toEqual({ status: "cancelled", cancelled: ["pip"] });
    while ((await ffmpegProcessesUnder(workRoot)).length > 0) {
      expect(Date.now() - cancelledAt, "ffmpeg still running").toBeLessThan(2000);
      await new Promise((r) => setTimeout(r, 50));
    }
    const run = await waitForRun(P, started.body.run_id);
    expect(run.status).toBe("cancelled");
    const all = await nodes(P);
    expect(all.pip).toMatchObject({ status: "cancelled", metadata: { error: "cancelled by user", cancelledBy: "user" } });
    expect(all.after).toMatchObject({ status: "cancelled", metadata: { error: "upstream pip was cancelled" } });

    // A pipeline cancel while a run's members are queued: none of them ever starts.
    const Q = await newPipeline("Cancel pipeline");
    for (const id of ["q1", "q2", "q3", "q4"]) await clipAsset(Q, id, { durationSeconds: 1, width: 160, height: 120, fps: 15 });
    await add(Q, { id: "m", type: "merge-videos", inputs: { segments: ["q1", "q2", "q3", "q4"] } });
    await stack.services.get("executor-ffmpeg")!.stop(); // nothing takes the queued jobs
    const queued = await api.call("POST", `/pipelines/${Q}/execute`);
    expect(queued.status).toBe(200);
    await api.waitForStatus(Q, "q4", ["queued"]);
    const cancel = await api.ok("POST", `/pipelines/${Q}/cancel`);
    expect([...cancel.cancelled].sort()).toEqual(["m", "q1", "q2", "q3", "q4"]);
    await stack.start("executor-ffmpeg");
    expect((await waitForRun(Q, queued.body.run_id)).status).toBe("cancelled");
    await new Promise((r) => setTimeout(r, 1500)); // the restarted executor drains the queued jobs
    for (const n of Object.values(await nodes(Q))) {
      expect(n.status).toBe("cancelled");
      expect(n.metadata!.startedAt, n.id).toBeUndefined();
    }
    expect(stack.services.get("executor-ffmpeg")!.logs.filter((l) => l.msg === "work started" && l.pipelineId === Q)).toEqual([]);
  }, 180_000);

  it("cancelling a node whose paid provider job is running cancels it at the provider (Runway's DELETE)", async () => {
    const P = await newPipeline("Cancel at the provider");
    await add(P, { id: "gen", type: "generate-animation", config: { provider: "runway", prompt: "a lighthouse at night", durationSeconds: 5 } });
    fakes.runway.fail("status", { kind: "hang" });
    const started = await api.call("POST", `/pipelines/${P}/execute`);
    expect(started.status).toBe(200);
    const deadline = Date.now() + 30_000;
    while (typeof (await api.node(P, "gen")).metadata?.providerJobId !== "string") {
      if (Date.now() > deadline) throw new Error("the Runway task was never recorded");
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(await api.ok("POST", `/pipelines/${P}/nodes/gen/cancel`)).toEqual({ status: "cancelled", cancelled: ["gen"] });
    const until = Date.now() + 10_000;
    while (fakes.runway.cancels < 1) {
      if (Date.now() > until) throw new Error(`Runway saw no cancel; calls: ${JSON.stringify(fakes.runway.calls.map((c) => c.endpoint))}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(fakes.runway.cancels).toBe(1);
    expect(fakes.runway.creates).toBe(1);
    expect((await waitForRun(P, started.body.run_id)).status).toBe("cancelled");
    expect(await api.node(P, "gen")).toMatchObject({ status: "cancelled", metadata: { error: "cancelled by user" } });
  }, 60_000);
});
