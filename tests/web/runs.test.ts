/**
 * Pipeline runs in the editor, in Chromium against the real services: Run all on a
 * 6-node pipeline (two clips -> merge, a script -> local voiceover -> mix-audio of the two) with the estimate and
 * budget shown first and the run in the history; graph problems marked on the offending nodes before a run and a
 * refused Run all listing them; a cancel (node and pipeline) showing cancelled, and retries of the cancelled node.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { insertNodeFixture, makeClipBuffer } from "@vp/testkit";
import { formatCost } from "../../web/lib/format";
import {
  dragConnection,
  node,
  openPage,
  recordedStatuses,
  recordStatuses,
  screenshot,
  startEditorStack,
  type EditorStack,
  storedNode,
  openEditor as openEditorOf,
} from "./harness";

let env: EditorStack;
/** The 6-node pipeline of the first test and its clips: the cache test imports a copy of it. */
let six: { id: string; clips: Record<string, Uint8Array> } | undefined;

beforeAll(async () => {
  env = await startEditorStack();
}, 300_000);

afterAll(async () => {
  await env?.cleanup();
});

const failedLoad = (status: number, path: RegExp) =>
  new RegExp(`^console\\.error: Failed to load resource: the server responded with a status of ${status} .*${path.source}\\)$`);
/** The refusals a test provokes show in the console as failed loads; nothing else may. */
const refusedRun = failedLoad(422, /\/pipelines\/[^/]+\/execute/);
const refusedRunToHere = failedLoad(422, /\/pipelines\/[^/]+\/nodes\/[^/]+\/execute/);

const nodeRow = (pipelineId: string, nodeId: string) => storedNode(env, pipelineId, nodeId);

/** A video asset with its file uploaded, not executed: the run executes it. */
async function videoAsset(pipelineId: string, id: string, bytes: Uint8Array, position: { x: number; y: number }) {
  await env.api.ok("POST", `/pipelines/${pipelineId}/nodes`, { id, title: `Clip ${id}`, type: "asset", asset: { type: "video" }, position });
  await env.api.ok("PUT", `/pipelines/${pipelineId}/nodes/${id}/asset`, bytes, { "content-type": "video/mp4" });
}

const openEditor = (pipelineId: string) => openEditorOf(env, pipelineId);

const status = (id: string, value: string) => `[data-testid="status-${id}"][data-status="${value}"]`;

describe("runs in the editor", () => {
  it("Run all on a 6-node pipeline: the estimate and budget first, every node completed live, the run in the history", async () => {
    const { pipeline } = await env.api.ok("POST", "/pipelines", { title: "Six nodes" });
    const P = pipeline.id;
    const [a, b] = await Promise.all([1.5, 2].map((s) => makeClipBuffer({ durationSeconds: s, width: 320, height: 240, fps: 25, audio: true })));
    await videoAsset(P, "clip-a", a!, { x: 0, y: 0 });
    await videoAsset(P, "clip-b", b!, { x: 0, y: 300 });
    six = { id: P, clips: { "clip-a": a!, "clip-b": b! } };
    const p = `/pipelines/${P}/nodes`;
    await env.api.ok("POST", p, {
      id: "script",
      title: "Script",
      type: "asset",
      asset: { type: "text", content: "Three seconds of local speech." },
      position: { x: 0, y: 600 },
    });
    await env.api.ok("POST", p, {
      id: "merge",
      title: "Merge",
      type: "merge-videos",
      inputs: { segments: ["clip-a", "clip-b"] },
      position: { x: 380, y: 120 },
    });
    await env.api.ok("POST", p, {
      id: "voice",
      title: "Voiceover",
      type: "generate-voiceover",
      inputs: { script: ["script"] },
      config: { provider: "local" },
      position: { x: 380, y: 560 },
    });
    await env.api.ok("POST", p, {
      id: "mix",
      title: "Final mix",
      type: "mix-audio",
      inputs: { video: ["merge"], audio: ["voice"] },
      config: { lengthMismatch: "pad" },
      position: { x: 760, y: 320 },
    });
    const ids = ["clip-a", "clip-b", "script", "merge", "voice", "mix"];

    const { page, expectNoErrors } = await openEditor(P);
    // Before the run: no problems, the estimate and the budget ("none") in the run bar.
    expect(await page.getByTestId("problems-toggle").count()).toBe(0);
    // The gateway's estimate (it knows the cache), once it has answered.
    const chip = page.locator('[data-testid="run-estimate"][data-origin="gateway"]');
    await chip.waitFor();
    expect(await chip.getAttribute("data-over")).toBe("false");
    expect(await page.getByTestId("run-budget").textContent()).toBe("none");
    const estimated = Number(await chip.getAttribute("data-estimate"));
    expect(await chip.textContent()).toBe(`Estimate ${formatCost(estimated)} · budget none`);
    // The run-to-here button is offered where something upstream must run first; not on the assets.
    await page.getByTestId("run-to-here-mix").waitFor();
    expect(await page.getByTestId("run-to-here-clip-a").count()).toBe(0);
    for (const id of ids) await recordStatuses(page, id);

    // Run all shows what will run and the estimate against the budget before anything starts.
    await page.getByTestId("run-all").click();
    await page.getByTestId("run-dialog").waitFor();
    await page.locator('[data-testid="dialog-counts"]', { hasText: "6 to execute" }).waitFor();
    expect(await page.getByTestId("dialog-estimated-total").textContent()).toBe(formatCost(estimated));
    expect(await page.getByTestId("dialog-budget").textContent()).toBe("none");
    expect(await page.locator('[data-testid="estimate-node"][data-source="execute"]').count()).toBe(6);
    await screenshot(page, "runs-01-run-all-dialog");
    expect((await env.api.ok("GET", `/pipelines/${P}/runs`)).runs).toEqual([]);

    await page.getByTestId("start-run").click();
    await page.getByTestId("run-dialog").waitFor({ state: "detached" });
    await page.getByTestId("history-toggle").click();
    await page.getByTestId("run-history").waitFor();
    for (const id of ids) await page.locator(status(id, "completed")).waitFor({ timeout: 120_000 });
    await page.locator('[data-testid="pipeline-progress"][data-completed="6"][data-total="6"]').waitFor();

    // Every node went through queued and in progress to completed on screen, without a reload.
    for (const id of ids) {
      const { statuses } = await recordedStatuses(page, id);
      expect(statuses[0], id).toBe("pending");
      expect(statuses.at(-1), id).toBe("completed");
      expect(
        statuses.filter((s) => s !== "queued"),
        `${id}: ${statuses.join(",")}`,
      ).toEqual(["pending", "in_progress", "completed"]);
    }
    // The mix started only after both of its inputs had completed (dependency order).
    const [merge, voice, mix] = await Promise.all(["merge", "voice", "mix"].map((id) => nodeRow(P, id)));
    expect(Date.parse(mix.metadata.queuedAt)).toBeGreaterThanOrEqual(Math.max(Date.parse(merge.metadata.completedAt), Date.parse(voice.metadata.completedAt)));
    expect(mix.output).toMatchObject({ type: "video", width: 320, height: 240 });

    // The run history: the run, newest first, completed with its counts.
    const { runs } = await env.api.ok("GET", `/pipelines/${P}/runs`);
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ kind: "all", status: "completed", node_ids: ids });
    const row = page.locator(`[data-testid="run-row"][data-run-id="${runs[0].id}"]`);
    await page.locator(`[data-testid="run-row"][data-run-id="${runs[0].id}"][data-status="completed"]`).waitFor();
    expect(await row.getAttribute("data-kind")).toBe("all");
    expect(await row.getAttribute("data-completed")).toBe("6");
    expect(await row.getAttribute("data-total")).toBe("6");
    expect(await row.locator(".run-label").textContent()).toBe("Run all");
    expect(await row.getByTestId("run-counts").textContent()).toBe("6/6 completed");
    // Nothing is running any more: no pipeline cancel offered; the run buttons of the nodes are gone.
    expect(await page.getByTestId("cancel-run").count()).toBe(0);
    expect(await page.getByTestId("run-to-here-mix").count()).toBe(0);
    await screenshot(page, "runs-02-run-all-completed");
    expectNoErrors();
  }, 240_000);

  it("Run to here runs the node and what it needs first, nothing else; the history names the target", async () => {
    const { pipeline } = await env.api.ok("POST", "/pipelines", { title: "Run to here" });
    const P = pipeline.id;
    const clip = await makeClipBuffer({ durationSeconds: 1, width: 160, height: 120, fps: 15, audio: true });
    await videoAsset(P, "c", clip, { x: 0, y: 120 });
    const p = `/pipelines/${P}/nodes`;
    await env.api.ok("POST", p, { id: "twice", title: "Twice", type: "merge-videos", inputs: { segments: ["c", "c"] }, position: { x: 360, y: 0 } });
    await env.api.ok("POST", p, { id: "thrice", title: "Thrice", type: "merge-videos", inputs: { segments: ["twice", "c"] }, position: { x: 720, y: 0 } });
    await env.api.ok("POST", p, {
      id: "side",
      title: "Side note",
      type: "asset",
      asset: { type: "text", content: "not in this run" },
      position: { x: 0, y: 440 },
    });

    const { page, expectNoErrors } = await openEditor(P);
    // Waiting on an upstream node: the card offers Run to here instead of the play button.
    expect(await page.getByTestId("execute-twice").count()).toBe(0);
    expect(await page.getByTestId("run-to-here-twice").getAttribute("title")).toBe('Run to here: this node and what it needs first (waiting for "Clip c")');
    await page.getByTestId("run-to-here-twice").click();
    await page.locator(status("twice", "completed")).waitFor({ timeout: 60_000 });
    expect((await nodeRow(P, "c")).status).toBe("completed");
    for (const id of ["thrice", "side"]) expect((await nodeRow(P, id)).status, id).toBe("pending");
    // Its inputs are done now: the next node has its play button back, and no Run to here.
    await page.locator('[data-testid="execute-thrice"]:not([disabled])').waitFor();
    expect(await page.getByTestId("run-to-here-thrice").count()).toBe(0);

    const { runs } = await env.api.ok("GET", `/pipelines/${P}/runs`);
    expect(runs).toMatchObject([{ kind: "upstream", target_node_id: "twice", node_ids: ["c", "twice"] }]);
    await page.getByTestId("history-toggle").click();
    const row = page.locator(`[data-testid="run-row"][data-run-id="${runs[0].id}"][data-status="completed"]`);
    await row.waitFor();
    expect(await row.locator(".run-label").textContent()).toBe("Run to here · Twice");
    expect(await row.getByTestId("run-counts").textContent()).toBe("2/2 completed");

    // From the side panel too: the last node, whose inputs are complete, runs alone.
    await page.locator(node("thrice")).click({ position: { x: 120, y: 20 } });
    await page.getByTestId("panel-run-to-here").click();
    await page.locator(status("thrice", "completed")).waitFor({ timeout: 60_000 });
    await page.locator('[data-testid="run-row"][data-kind="upstream"][data-status="completed"] .run-label', { hasText: "Run to here · Thrice" }).waitFor();
    expect((await nodeRow(P, "side")).status).toBe("pending");
    await screenshot(page, "runs-11-run-to-here");
    expectNoErrors();
  }, 240_000);

  it("graph problems are marked on the offending nodes before a run, live as the graph changes; Run all is refused with every problem listed", async () => {
    const { pipeline } = await env.api.ok("POST", "/pipelines", { title: "Broken graph" });
    const P = pipeline.id;
    const clip = await makeClipBuffer({ durationSeconds: 1, width: 160, height: 120, fps: 15, audio: true });
    await videoAsset(P, "v", clip, { x: 0, y: 0 });
    await videoAsset(P, "w", clip, { x: 0, y: 320 });
    await env.api.ok("POST", `/pipelines/${P}/nodes`, {
      id: "txt",
      title: "Notes",
      type: "asset",
      asset: { type: "text", content: "x" },
      position: { x: 0, y: 640 },
    });
    const { page, expectNoErrors } = await openEditor(P);
    const marker = (id: string) => page.getByTestId(`problems-${id}`);
    // Live: a new merge is marked until it has its two segments.
    await page.getByTestId("palette-merge-videos").click();
    await marker("merge-videos-1").waitFor();
    expect(await marker("merge-videos-1").textContent()).toBe('⚠ Input "segments" needs at least 2 node(s), got 0');
    await page.getByTestId("fit-view").click();
    await page.waitForTimeout(300);
    await dragConnection(page, "v", "merge-videos-1", "segments");
    await page.locator('[data-testid="problems-merge-videos-1"]', { hasText: "got 1" }).waitFor();
    await dragConnection(page, "w", "merge-videos-1", "segments");
    await marker("merge-videos-1").waitFor({ state: "detached" });
    expect(await page.getByTestId("problems-toggle").count()).toBe(0);

    // The editor's routes refuse these edges, so they are written behind its back (an old or imported graph).
    await insertNodeFixture(env.db.admin, { pipelineId: P, id: "x", type: "merge-videos", inputs: { segments: ["v", "y"] } });
    await insertNodeFixture(env.db.admin, { pipelineId: P, id: "y", type: "merge-videos", inputs: { segments: ["v", "x"] } });
    await insertNodeFixture(env.db.admin, { pipelineId: P, id: "dangling", type: "merge-videos", inputs: { segments: ["v", "ghost"] } });
    await insertNodeFixture(env.db.admin, { pipelineId: P, id: "mismatch", type: "merge-videos", inputs: { segments: ["v", "txt"] } });
    for (const [id, x, y] of [
      ["x", 760, 0],
      ["y", 1140, 0],
      ["dangling", 760, 360],
      ["mismatch", 760, 720],
    ] as const) {
      await env.api.ok("PATCH", `/pipelines/${P}/nodes/${id}`, { title: id, position: { x, y } });
    }

    await page.reload();
    await page.locator('[data-testid="live-status"][data-live="live"]').waitFor();
    await page.getByTestId("fit-view").click();
    await marker("x").waitFor();
    expect(await marker("x").textContent()).toBe("⚠ Is part of a cycle: x -> y -> x");
    expect(await marker("y").textContent()).toBe("⚠ Is part of a cycle: x -> y -> x");
    expect(await marker("dangling").textContent()).toBe('⚠ Input "segments" refers to node "ghost", which does not exist in this pipeline');
    expect(await marker("mismatch").textContent()).toBe('⚠ Input "segments" accepts video, but "Notes" (txt) produces text');
    expect(await marker("mismatch").getAttribute("data-origin")).toBe("browser");
    for (const id of ["v", "w", "txt"]) expect(await marker(id).count(), id).toBe(0);
    expect(await page.locator(`${node("x")} .node-card.has-problems`).count()).toBe(1);
    expect(await page.getByTestId("problems-toggle").getAttribute("data-count")).toBe("4");
    await page.getByTestId("problems-toggle").click();
    expect(
      await page.locator('[data-testid="problems-list"] [data-testid="problem-item"]').evaluateAll((items) => items.map((i) => i.getAttribute("data-node"))),
    ).toEqual(["x", "y", "dangling", "mismatch"]);
    await page.getByTestId("problems-toggle").click();
    await screenshot(page, "runs-03-problems-before-run");

    // Run all: the dialog lists them, and the gateway refuses the run with every problem, node by node.
    await page.getByTestId("run-all").click();
    await page.getByTestId("run-dialog").waitFor();
    expect(await page.locator('[data-testid="dialog-problems"] [data-testid="problem-item"]').count()).toBe(4);
    await page.getByTestId("start-run").click();
    const refused = page.getByTestId("run-refused");
    await refused.waitFor();
    expect(await refused.locator("strong").first().textContent()).toBe("Run all refused");
    expect(await refused.locator('[data-testid="problem-item"]').allTextContents()).toEqual([
      "xIs part of a cycle: x -> y -> x",
      "yIs part of a cycle: x -> y -> x",
      'danglingInput "segments" refers to node "ghost", which does not exist in this pipeline',
      'mismatchInput "segments" accepts video, but "Notes" (txt) produces text',
    ]);
    // The offending nodes now carry the gateway's problems; nothing ran.
    expect(await marker("mismatch").getAttribute("data-origin")).toBe("gateway");
    expect(await marker("v").count()).toBe(0);
    expect((await env.api.ok("GET", `/pipelines/${P}/runs`)).runs).toEqual([]);
    expect((await nodeRow(P, "v")).status).toBe("pending");
    await page.keyboard.press("Escape");
    await screenshot(page, "runs-04-run-all-refused");
    expectNoErrors(refusedRun);
  }, 240_000);

  it("cancel: a node's Cancel and the pipeline's Cancel run show cancelled; the cancelled node is retried from its card and its panel", async () => {
    const { pipeline } = await env.api.ok("POST", "/pipelines", { title: "Cancel and retry" });
    const P = pipeline.id;
    // Two resolutions: the merge re-encodes, so it runs for seconds.
    const [p1, q1] = await Promise.all([
      makeClipBuffer({ durationSeconds: 10, width: 640, height: 360, fps: 30, audio: true }),
      makeClipBuffer({ durationSeconds: 10, width: 480, height: 270, fps: 30, audio: true }),
    ]);
    await videoAsset(P, "p", p1, { x: 0, y: 0 });
    await videoAsset(P, "q", q1, { x: 0, y: 320 });
    await env.api.ok("POST", `/pipelines/${P}/nodes`, {
      id: "m",
      title: "Long merge",
      type: "merge-videos",
      inputs: { segments: ["p", "q"] },
      position: { x: 380, y: 120 },
    });
    await env.api.ok("POST", `/pipelines/${P}/nodes`, {
      id: "after",
      title: "After",
      type: "merge-videos",
      inputs: { segments: ["m", "p"] },
      position: { x: 760, y: 120 },
    });

    const { page, expectNoErrors } = await openEditor(P);
    await page.getByTestId("run-all").click();
    await page.getByTestId("start-run").click();
    await page.locator(status("m", "in_progress")).waitFor({ timeout: 60_000 });
    // While anything runs, the pipeline can be cancelled; the running node has its own Cancel.
    await page.getByTestId("cancel-run").waitFor();
    await page.getByTestId("cancel-m").click();
    await page.locator(status("m", "cancelled")).waitFor({ timeout: 15_000 });
    await page.locator(status("after", "cancelled")).waitFor({ timeout: 15_000 });
    expect(await page.getByTestId("error-m").textContent()).toBe("cancelled by user");
    expect(await page.getByTestId("error-after").textContent()).toBe('upstream "Long merge" (m) was cancelled');
    await page.getByTestId("cancel-run").waitFor({ state: "detached" });
    await page.getByTestId("history-toggle").click();
    await page.locator('[data-testid="run-row"][data-kind="all"][data-status="cancelled"]').waitFor();
    expect(await page.locator('[data-testid="run-row"][data-kind="all"] [data-testid="run-counts"]').textContent()).toBe("2/4 completed · 2 cancelled");
    await screenshot(page, "runs-05-cancelled");

    // Retry from the panel, with its dependant; then cancel the whole pipeline from the run bar.
    await page.locator(node("m")).click({ position: { x: 120, y: 20 } });
    await page.getByTestId("node-panel").waitFor();
    expect(await page.getByTestId("panel-error").textContent()).toBe("cancelled by user");
    expect(await page.getByTestId("retry-downstream").isChecked()).toBe(true);
    await page.getByTestId("panel-retry").click();
    await page.locator(status("m", "in_progress")).waitFor({ timeout: 60_000 });
    await page.getByTestId("panel-cancel").waitFor();
    await page.getByTestId("cancel-run").click();
    await page.locator(status("m", "cancelled")).waitFor({ timeout: 15_000 });
    await page.locator(status("after", "cancelled")).waitFor({ timeout: 15_000 });
    await page.locator('[data-testid="run-row"][data-kind="retry"][data-status="cancelled"]').waitFor();
    expect(await page.locator('[data-testid="run-row"][data-kind="retry"] .run-label').textContent()).toBe("Retry · Long merge and dependants");
    await page.keyboard.press("Escape");
    await page.getByTestId("node-panel").waitFor({ state: "detached" });

    // Retry from the card (the node alone): it completes, its dependant stays cancelled until retried too.
    await recordStatuses(page, "m");
    await page.getByTestId("retry-m").click();
    await page.locator(status("m", "completed")).waitFor({ timeout: 120_000 });
    const seen = (await recordedStatuses(page, "m")).statuses;
    expect(seen[0]).toBe("cancelled");
    expect(seen.slice(-2), seen.join(",")).toEqual(["in_progress", "completed"]);
    // Both cancelled attempts are kept in the node's history.
    expect((await nodeRow(P, "m")).metadata.history).toEqual([
      expect.objectContaining({ status: "cancelled", error: "cancelled by user" }),
      expect.objectContaining({ status: "cancelled", error: "cancelled by user" }),
    ]);
    expect((await nodeRow(P, "after")).status).toBe("cancelled");
    await page.getByTestId("retry-after").click();
    await page.locator(status("after", "completed")).waitFor({ timeout: 60_000 });
    await page.locator('[data-testid="pipeline-progress"][data-completed="4"][data-total="4"]').waitFor();
    // A run is recorded as finished a moment after its last node completes: both retries shown completed first.
    await page.locator('[data-testid="run-row"][data-kind="retry"][data-status="completed"]').nth(1).waitFor();

    const { runs } = await env.api.ok("GET", `/pipelines/${P}/runs`);
    expect(runs.map((r: { kind: string; status: string; target_node_id: string | null }) => [r.kind, r.status, r.target_node_id])).toEqual([
      ["retry", "completed", "after"],
      ["retry", "completed", "m"],
      ["retry", "cancelled", "m"],
      ["all", "cancelled", null],
    ]);
    await page.locator('[data-testid="run-row"]').nth(3).waitFor();
    await expect
      .poll(() =>
        page.locator('[data-testid="run-row"]').evaluateAll((rows) => rows.map((r) => `${r.getAttribute("data-kind")}:${r.getAttribute("data-status")}`)),
      )
      .toEqual(["retry:completed", "retry:completed", "retry:cancelled", "all:cancelled"]);
    await page.getByTestId("fit-view").click();
    await page.waitForTimeout(300);
    await screenshot(page, "runs-06-retried");
    expectNoErrors();
  }, 240_000);
  it("a second run of an identical imported pipeline completes from the cache: 'cached' badges with the cost saved, and the history says so", async () => {
    expect(six, "the 6-node pipeline of the first test").toBeDefined();
    const original = six!;
    const document = await env.api.ok("GET", `/pipelines/${original.id}/export`);
    const { pipeline } = await env.api.ok("POST", "/pipelines/import", { ...document, title: "Six nodes (copy)" });
    const P = pipeline.id;
    // Storage keys never travel in a document: the same files are uploaded again.
    for (const [id, bytes] of Object.entries(original.clips))
      await env.api.ok("PUT", `/pipelines/${P}/nodes/${id}/asset`, bytes, { "content-type": "video/mp4" });
    const ids = ["clip-a", "clip-b", "script", "merge", "voice", "mix"];

    const { page, expectNoErrors } = await openEditor(P);
    await page.locator('[data-testid="run-estimate"][data-origin="gateway"]').waitFor();
    await page.getByTestId("run-all").click();
    await page.getByTestId("run-dialog").waitFor();
    await page.locator('[data-testid="dialog-estimate"][data-origin="gateway"]').waitFor();
    await screenshot(page, "runs-07-copy-run-dialog");
    await page.getByTestId("start-run").click();
    for (const id of ids) await page.locator(status(id, "completed")).waitFor({ timeout: 120_000 });

    // The assets ingest again (new uploads); everything made from their bytes comes from the first pipeline's cache.
    const copied = Object.fromEntries(await Promise.all(ids.map(async (id) => [id, await nodeRow(P, id)] as const)));
    const made = Object.fromEntries(await Promise.all(ids.map(async (id) => [id, await nodeRow(original.id, id)] as const)));
    const fromCache = ids.filter((id) => copied[id].metadata.cached === true);
    expect(fromCache).toEqual(["script", "merge", "voice", "mix"]);
    for (const id of fromCache) {
      const saved = copied[id].metadata.costSaved;
      expect(copied[id].metadata).toMatchObject({ cost: 0, cachedFrom: { pipelineId: original.id, nodeId: id } });
      expect(saved, id).toBeCloseTo(made[id].metadata.cost ?? 0, 9);
      const badge = page.locator(`[data-testid="cached-${id}"][data-cost-saved="${saved}"]`);
      await badge.waitFor();
      expect(await badge.textContent()).toBe(`cached · saved ${formatCost(saved)}`);
    }
    expect(copied.voice.metadata.costSaved).toBeGreaterThan(0); // local AI work is priced per compute second
    for (const id of ["clip-a", "clip-b"]) expect(await page.getByTestId(`cached-${id}`).count()).toBe(0);

    // The run history: the run with its cached count and what it saved.
    const { runs } = await env.api.ok("GET", `/pipelines/${P}/runs`);
    await expect.poll(async () => (await env.api.ok("GET", `/pipelines/${P}/runs`)).runs[0].status).toBe("completed");
    const run = (await env.api.ok("GET", `/pipelines/${P}/runs`)).runs[0];
    expect(runs).toHaveLength(1);
    expect(run.metadata).toMatchObject({ cached: 4, executed: 2 });
    await page.getByTestId("history-toggle").click();
    const row = page.locator(`[data-testid="run-row"][data-run-id="${run.id}"][data-status="completed"]`);
    await row.waitFor();
    expect(await row.getAttribute("data-cached")).toBe("4");
    expect(await row.getByTestId("run-reuse").textContent()).toBe(`2 executed · 4 cached · ${run.metadata.upToDate ?? 0} up to date`);
    expect(await row.getByTestId("run-saved").textContent()).toBe(`saved ${formatCost(run.metadata.costSaved)}`);

    // The panel says where the result came from and what it saved.
    await page.locator(node("voice")).click({ position: { x: 120, y: 20 } });
    await page.getByTestId("node-panel").waitFor();
    expect(await page.getByTestId("fact-saved").textContent()).toBe(formatCost(copied.voice.metadata.costSaved));
    expect(await page.getByTestId("fact-cached from").textContent()).toBe("voice (another pipeline)");
    await page.getByTestId("panel-cached-voice").waitFor();
    await screenshot(page, "runs-08-cached");
    expectNoErrors();
  }, 240_000);

  it("budget: set in Run all's dialog, an estimate over it is red before the run, the gateway refuses the run with the per-node estimates; cleared again", async () => {
    const { pipeline } = await env.api.ok("POST", "/pipelines", { title: "Over budget" });
    const P = pipeline.id;
    const script = "This presenter speaks for a good while, which is what makes the estimate exceed the budget. ".repeat(6);
    const p = `/pipelines/${P}/nodes`;
    await env.api.ok("POST", p, { id: "script", title: "Script", type: "asset", asset: { type: "text", content: script }, position: { x: 0, y: 120 } });
    await env.api.ok("POST", p, {
      id: "head",
      title: "Presenter",
      type: "talking-head",
      inputs: { script: ["script"] },
      config: { provider: "heygen", avatarId: "a1", voiceId: "v1" },
      position: { x: 380, y: 0 },
    });
    await env.api.ok("POST", p, {
      id: "vo",
      title: "Voiceover",
      type: "generate-voiceover",
      inputs: { script: ["script"] },
      config: { provider: "elevenlabs" },
      position: { x: 380, y: 330 },
    });

    const { page, expectNoErrors } = await openEditor(P);
    const chip = page.locator('[data-testid="run-estimate"][data-origin="gateway"]');
    await chip.waitFor();
    const estimated = Number(await chip.getAttribute("data-estimate"));
    expect(estimated).toBeGreaterThan(0.05);
    expect(await chip.getAttribute("data-over")).toBe("false");

    // Set the budget below the estimate in Run all's dialog: stored as the pipeline's maxCost, shown in red.
    await page.getByTestId("run-all").click();
    await page.getByTestId("run-dialog").waitFor();
    await page.getByTestId("budget-input").fill("0.05");
    await page.getByTestId("budget-save").click();
    await page.locator('[data-testid="run-estimate"][data-budget="0.05"][data-over="true"]').waitFor();
    expect(await page.getByTestId("run-estimate").textContent()).toBe(`Estimate ${formatCost(estimated)} · budget $0.05 over budget`);
    expect((await env.api.ok("GET", `/pipelines/${P}`)).pipeline.config).toMatchObject({ maxCost: 0.05 });
    expect(await page.getByTestId("dialog-budget").textContent()).toBe("$0.05");
    expect(await page.getByTestId("over-budget").textContent()).toBe(
      `Over budget by ${formatCost(estimated - 0.05)}: the gateway would refuse this run, so Start run is off. Raise or clear the budget.`,
    );
    expect(await page.locator('[data-testid="dialog-estimate"][data-over="true"]').count()).toBe(1);
    // Start run is not offered for a run the gateway would refuse.
    expect(await page.getByTestId("start-run").isDisabled()).toBe(true);
    await screenshot(page, "runs-09-over-budget");

    // Run to here on the presenter: the gateway refuses it with the reason (nodes by title) and the per-node estimates; nothing ran.
    await page.keyboard.press("Escape");
    await page.getByTestId("run-to-here-head").click();
    const refused = page.getByTestId("run-refused");
    await refused.waitFor();
    expect(await refused.getByTestId("refusal-message").textContent()).toMatch(
      /^Estimated cost \$\d+\.\d\d exceeds the pipeline's budget \(maxCost\) of \$0\.05: "Presenter" \(head\) \$\d+\.\d\d$/,
    );
    expect(await refused.locator('[data-testid="estimate-node"]').evaluateAll((rows) => rows.map((r) => r.getAttribute("data-node")))).toEqual([
      "script",
      "head",
    ]);
    expect((await env.api.ok("GET", `/pipelines/${P}/runs`)).runs).toEqual([]);
    for (const id of ["script", "head", "vo"]) expect((await nodeRow(P, id)).status).toBe("pending");
    await screenshot(page, "runs-10-budget-refused");

    // Cleared: no budget, nothing over.
    await page.getByTestId("dismiss-refusal").click();
    await page.getByTestId("run-all").click();
    await page.getByTestId("budget-clear").click();
    await page.locator('[data-testid="run-estimate"][data-budget=""][data-over="false"]').waitFor();
    expect(await page.getByTestId("run-budget").textContent()).toBe("none");
    expect((await env.api.ok("GET", `/pipelines/${P}`)).pipeline.config.maxCost ?? null).toBeNull();
    expectNoErrors(refusedRunToHere);
  }, 240_000);
  it("Run all with Ignore the cache makes every node again, completed ones included, as new results", async () => {
    const { pipeline } = await env.api.ok("POST", "/pipelines", { title: "Fresh takes" });
    const P = pipeline.id;
    const p = `/pipelines/${P}/nodes`;
    await env.api.ok("POST", p, {
      id: "script",
      title: "Script",
      type: "asset",
      asset: { type: "text", content: "A fresh take, please." },
      position: { x: 0, y: 60 },
    });
    await env.api.ok("POST", p, {
      id: "voice",
      title: "Voiceover",
      type: "generate-voiceover",
      inputs: { script: ["script"] },
      config: { provider: "local" },
      position: { x: 380, y: 60 },
    });
    const { page, expectNoErrors } = await openEditor(P);
    await page.getByTestId("run-all").click();
    await page.getByTestId("start-run").click();
    for (const id of ["script", "voice"]) await page.locator(status(id, "completed")).waitFor({ timeout: 60_000 });
    const first = await Promise.all(["script", "voice"].map((id) => nodeRow(P, id)));

    // Everything is up to date: a plain Run all would have nothing to do. Ignoring the cache runs both again.
    await page.getByTestId("run-all").click();
    await page.getByTestId("run-dialog").waitFor();
    await page.getByTestId("force-run").check();
    await recordStatuses(page, "voice");
    await page.getByTestId("start-run").click();
    await page.getByTestId("run-dialog").waitFor({ state: "detached" });
    await page.locator('[data-testid="pipeline-progress"][data-completed="2"][data-total="2"]').waitFor();
    await expect.poll(async () => (await env.api.ok("GET", `/pipelines/${P}/runs`)).runs.length).toBe(2);
    await expect.poll(async () => (await env.api.ok("GET", `/pipelines/${P}/runs`)).runs[0].status, { timeout: 60_000 }).toBe("completed");
    const { runs } = await env.api.ok("GET", `/pipelines/${P}/runs`);
    expect(runs[0]).toMatchObject({ kind: "all", node_ids: ["script", "voice"] });
    const second = await Promise.all(["script", "voice"].map((id) => nodeRow(P, id)));
    for (const [i, row] of second.entries()) {
      // Made by the forced run, not taken from the cache: a new run id, a later completion, no cache hit.
      expect(row.metadata.runId, row.id).toBe(runs[0].id);
      expect(Date.parse(row.metadata.completedAt)).toBeGreaterThan(Date.parse(first[i]!.metadata.completedAt));
      expect(row.metadata.cachedFrom, row.id).toBeUndefined();
    }
    // The voiceover went through in progress again on screen.
    expect((await recordedStatuses(page, "voice")).statuses).toContain("in_progress");
    expect((await recordedStatuses(page, "voice")).statuses.at(-1)).toBe("completed");
    await screenshot(page, "runs-07-forced-run");
    expectNoErrors();
  }, 180_000);
});
