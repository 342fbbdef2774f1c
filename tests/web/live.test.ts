/**
 * The editor against the real services in Chromium, continued: the gateway going away and coming back
 * while a node runs, pipeline as code through the UI, keyboard editing,
 * segment reordering, positions, and the list's rename/delete and error states.
 */
import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PIPELINE_DOCUMENT_FORMAT } from "@vp/contracts";
import { createCompletedClips } from "../e2e/helpers";
import { node, openPage, recordedStatuses, recordStatuses, screenshot, startEditorStack, type EditorStack, storedNode } from "./harness";
import type { Page } from "playwright-core";

let env: EditorStack;

beforeAll(async () => {
  env = await startEditorStack();
}, 300_000);

afterAll(async () => {
  await env?.cleanup();
});

const nodeRow = (pipelineId: string, nodeId: string) => storedNode(env, pipelineId, nodeId);

/** What the canvas shows: every node (id, title, type, position) and every edge, sorted. */
async function canvasGraph(page: Page) {
  return page.evaluate(() => {
    const nodes = Array.from(document.querySelectorAll(".react-flow__node")).map((element) => {
      const n = element as HTMLElement;
      return {
        id: n.dataset.id,
        title: n.querySelector('[data-testid^="node-title-"]')?.textContent,
        type: (n.querySelector("[data-node-type]") as HTMLElement | null)?.dataset.nodeType,
        transform: n.style.transform,
      };
    });
    const edges = Array.from(document.querySelectorAll(".react-flow__edge")).map((e) => ({
      id: e.getAttribute("data-testid"),
      label: e.querySelector(".react-flow__edge-text")?.textContent ?? null,
    }));
    return { nodes: nodes.sort((a, b) => String(a.id).localeCompare(String(b.id))), edges: edges.sort((a, b) => String(a.id).localeCompare(String(b.id))) };
  });
}

describe("the editor in Chromium, live", () => {
  it("the gateway stops and restarts while a node runs; the page shows it is disconnected, then the final status, without a reload", async () => {
    const { pipeline } = await env.api.ok("POST", "/pipelines", { title: "Gateway restart" });
    await createCompletedClips(env.api, pipeline.id, [
      { id: "a", durationSeconds: 14, width: 640, height: 360 },
      { id: "b", durationSeconds: 14, width: 480, height: 270 },
    ]);
    await env.api.ok("POST", `/pipelines/${pipeline.id}/nodes`, {
      id: "final",
      title: "Final cut",
      type: "merge-videos",
      inputs: { segments: ["a", "b"] },
      config: { reencode: "always" },
    });

    const { page, expectNoErrors } = await openPage(env.browser);
    await page.goto(`${env.web.url}/pipelines/${pipeline.id}`);
    await page.locator('[data-testid="live-status"][data-live="live"]').waitFor();
    await page.evaluate(() => ((window as unknown as { __vpSamePage: boolean }).__vpSamePage = true));
    await recordStatuses(page, "final");
    await page.getByTestId("execute-final").click();
    await page.locator('[data-testid="status-final"][data-status="in_progress"]').waitFor({ timeout: 60_000 });

    const gateway = env.stack.services.get("gateway")!;
    await gateway.stop();
    await page.getByTestId("disconnected-banner").waitFor();
    await page.locator('[data-testid="live-status"][data-live="reconnecting"]').waitFor();
    await screenshot(page, "07-gateway-down");

    // Another tab opened while the gateway is down gets a readable error, and recovers by itself later.
    const other = await openPage(env.browser);
    await other.page.goto(env.web.url);
    await other.page.getByTestId("error-state").waitFor();
    expect(await other.page.getByTestId("error-state").textContent()).toMatch(
      /The gateway is not reachable.*Cannot reach the gateway at http:\/\/127\.0\.0\.1:\d+/,
    );

    // The work goes on without the gateway; the page cannot know yet and says it is disconnected.
    await expect.poll(async () => (await nodeRow(pipeline.id, "final")).status, { timeout: 120_000, interval: 250 }).toBe("completed");
    expect(await page.getByTestId("status-final").getAttribute("data-status")).toBe("in_progress");

    await env.stack.start("gateway");
    await page.locator('[data-testid="status-final"][data-status="completed"]').waitFor({ timeout: 30_000 });
    await page.locator('[data-testid="live-status"][data-live="live"]').waitFor();
    await page.getByTestId("disconnected-banner").waitFor({ state: "detached" });
    expect(await page.evaluate(() => (window as unknown as { __vpSamePage?: boolean }).__vpSamePage)).toBe(true);
    const { statuses } = await recordedStatuses(page, "final");
    expect(statuses).toEqual(["pending", "queued", "in_progress", "completed"]);
    await page.getByTestId("output-video-final").waitFor();
    await other.page.getByTestId("pipeline-table").waitFor({ timeout: 30_000 });

    // The only errors are the browser's own reports of the refused connections while the gateway was down.
    const outage = /^console\.error: Failed to load resource: net::ERR_CONNECTION_REFUSED \(http:\/\/127\.0\.0\.1:\d+\/v1\/video_production\//;
    expectNoErrors(outage);
    other.expectNoErrors(outage);
    expect(gateway.pid).not.toBe(env.stack.services.get("gateway")!.pid);
  });

  it("exports a pipeline to JSON, imports it as a new one, and the canvas shows the same graph", async () => {
    const { pipeline } = await env.api.ok("POST", "/pipelines", { title: "As code" });
    const p = `/pipelines/${pipeline.id}/nodes`;
    await env.api.ok("POST", p, { id: "script", title: "Script", type: "asset", asset: { type: "text", content: "Welcome back!" }, position: { x: 0, y: 0 } });
    await env.api.ok("POST", p, {
      id: "voice",
      title: "Voiceover",
      type: "generate-voiceover",
      inputs: { script: ["script"] },
      config: { speed: 1.1 },
      position: { x: 380, y: 0 },
    });
    await env.api.ok("POST", p, { id: "intro", title: "Intro clip", type: "asset", asset: { type: "video" }, position: { x: 0, y: 300 } });
    await env.api.ok("POST", p, { id: "outro", title: "Outro clip", type: "asset", asset: { type: "video" }, position: { x: 0, y: 580 } });
    await env.api.ok("POST", p, {
      id: "cut",
      title: "Cut",
      type: "merge-videos",
      inputs: { segments: ["outro", "intro"] },
      config: { reencode: "always" },
      position: { x: 380, y: 380 },
    });

    const { page, expectNoErrors } = await openPage(env.browser);
    await page.goto(`${env.web.url}/pipelines/${pipeline.id}`);
    await page.locator(node("cut")).waitFor();
    const download = page.waitForEvent("download");
    await page.getByTestId("export-button").click();
    const file = await (await download).path();
    expect((await download).suggestedFilename()).toBe("as-code.pipeline.json");
    const document = JSON.parse(await readFile(file, "utf8"));
    expect(document).toMatchObject({ format: PIPELINE_DOCUMENT_FORMAT, version: 1, title: "As code" });
    expect(document.nodes.map((n: { id: string }) => n.id)).toEqual(["script", "voice", "intro", "outro", "cut"]);
    const original = await canvasGraph(page);
    expect(original.nodes).toHaveLength(5);
    expect(original.edges.map((e) => e.id)).toEqual(["rf__edge-intro->cut.segments", "rf__edge-outro->cut.segments", "rf__edge-script->voice.script"]);

    await page.goto(env.web.url);
    await page.getByTestId("import-input").setInputFiles(file);
    await page.waitForURL((url) => /\/pipelines\/[^/]+$/.test(url.pathname) && !url.pathname.endsWith(pipeline.id));
    await page.locator(node("cut")).waitFor();
    await page.locator('[data-testid="live-status"][data-live="live"]').waitFor();
    expect(await page.getByTestId("pipeline-title").textContent()).toBe("As code (imported)");
    expect(await canvasGraph(page)).toEqual(original);
    await screenshot(page, "08-imported-pipeline");

    // An invalid document is refused with every problem listed, node by node, and nothing is created.
    const before = (await env.db.admin.query("select count(*)::int as n from video_production_pipelines")).rows[0].n;
    await page.goto(env.web.url);
    await page.getByTestId("pipeline-table").waitFor();
    const broken = {
      ...document,
      nodes: [
        ...document.nodes.filter((n: { id: string }) => n.id !== "intro"),
        { id: "music", title: "Music", type: "asset", asset: { type: "audio" } },
        { id: "cut2", title: "Cut 2", type: "merge-videos", inputs: { segments: ["music"] }, config: { fps: 0 } },
      ],
    };
    await page
      .getByTestId("import-input")
      .setInputFiles({ name: "broken.pipeline.json", mimeType: "application/json", buffer: Buffer.from(JSON.stringify(broken)) });
    const problems = page.getByTestId("import-problems");
    await problems.waitFor();
    expect(await problems.locator("strong").textContent()).toBe(
      "broken.pipeline.json was not imported: The pipeline document has 3 problems; nothing was created",
    );
    expect(await problems.locator("li").allTextContents()).toEqual([
      'node "cut" inputs.segments: input "segments" refers to node "intro", which does not exist in this pipeline',
      'node "cut2" config.fps: Too small: expected number to be >=1',
      'node "cut2" inputs.segments: input "segments" accepts video, but node "music" produces audio',
    ]);
    await screenshot(page, "09-import-problems");
    expect((await env.db.admin.query("select count(*)::int as n from video_production_pipelines")).rows[0].n).toBe(before);
    // The browser reports the refused import (422) as a failed resource load; nothing else may be logged.
    expectNoErrors(/^console\.error: Failed to load resource: the server responded with a status of 422 .*\/v1\/video_production\/pipelines\/import\)$/);
  });

  it("reorders segments, moves a node (position only), deletes an edge and a node with the keyboard, closes the panel with Escape", async () => {
    const { pipeline } = await env.api.ok("POST", "/pipelines", { title: "Keyboard" });
    const p = `/pipelines/${pipeline.id}/nodes`;
    for (const [i, id] of ["a", "b", "c"].entries()) {
      await env.api.ok("POST", p, { id, title: id.toUpperCase(), type: "asset", asset: { type: "video" }, position: { x: 0, y: i * 280 } });
    }
    await env.api.ok("POST", p, {
      id: "m",
      title: "Merge",
      type: "merge-videos",
      inputs: { segments: ["a", "b", "c"] },
      config: { reencode: "auto" },
      position: { x: 380, y: 200 },
    });

    const { page, expectNoErrors } = await openPage(env.browser);
    await page.goto(`${env.web.url}/pipelines/${pipeline.id}`);
    await page.locator(node("m")).waitFor();
    await page.locator('[data-testid="live-status"][data-live="live"]').waitFor();

    // Reorder the segments: the inputs slot is saved in the new order.
    await page.locator(node("m")).click({ position: { x: 120, y: 20 } });
    await page.getByTestId("node-panel").waitFor();
    await page.getByRole("button", { name: "Move A down" }).click();
    await expect.poll(async () => (await nodeRow(pipeline.id, "m")).inputs).toEqual({ segments: ["b", "a", "c"] });
    await page.locator('[data-testid="rf__edge-a->m.segments"] .react-flow__edge-text', { hasText: "2" }).waitFor();
    expect(await page.getByTestId("slot-item").allTextContents()).toEqual(["1B↑↓×", "2A↑↓×", "3C↑↓×"]);

    await page.keyboard.press("Escape");
    await page.getByTestId("node-panel").waitFor({ state: "detached" });

    // Dragging a node saves its position, and only its position.
    const header = await page.locator(`${node("m")} .node-header`).boundingBox();
    await page.mouse.move(header!.x + 60, header!.y + 15);
    await page.mouse.down();
    await page.mouse.move(header!.x + 120, header!.y + 75, { steps: 8 });
    await page.mouse.up();
    await expect.poll(async () => (await nodeRow(pipeline.id, "m")).position.y).toBeGreaterThan(230);
    const moved = await nodeRow(pipeline.id, "m");
    expect(moved.config).toEqual({ reencode: "auto" });
    expect(moved.position.x).toBeGreaterThan(410);

    // Keyboard: focus an edge, select it, Delete.
    await page.locator('[data-testid="rf__edge-c->m.segments"]').focus();
    await page.keyboard.press("Enter");
    await page.locator('[data-testid="rf__edge-c->m.segments"].selected').waitFor();
    await page.keyboard.press("Delete");
    await page.locator('[data-testid="rf__edge-c->m.segments"]').waitFor({ state: "detached" });
    expect((await nodeRow(pipeline.id, "m")).inputs).toEqual({ segments: ["b", "a"] });

    // Select a node that is an input of the merge and delete it: it leaves the merge's inputs first.
    await page.locator(node("a")).click({ position: { x: 120, y: 20 } });
    await page.getByTestId("node-panel").waitFor();
    await page.keyboard.press("Escape");
    await page.getByTestId("node-panel").waitFor({ state: "detached" });
    await page.locator(node("a")).click({ position: { x: 120, y: 20 } });
    await page.keyboard.press("Delete");
    await page.locator(node("a")).waitFor({ state: "detached" });
    expect(await nodeRow(pipeline.id, "a")).toBeUndefined();
    expect((await nodeRow(pipeline.id, "m")).inputs).toEqual({ segments: ["b"] });

    // Or from the panel.
    await page.locator(node("b")).click({ position: { x: 120, y: 20 } });
    await page.getByTestId("delete-node").click();
    await page.locator(node("b")).waitFor({ state: "detached" });
    expect((await nodeRow(pipeline.id, "m")).inputs).toEqual({ segments: [] });

    // After a reload everything is where it was left.
    await page.reload();
    await page.locator(node("m")).waitFor();
    const transform = await page.locator(node("m")).evaluate((el) => (el as HTMLElement).style.transform);
    expect(transform).toBe(`translate(${moved.position.x}px, ${moved.position.y}px)`);
    expect(await page.locator(".react-flow__node").count()).toBe(2);
    expect(await page.locator(".react-flow__edge").count()).toBe(0);
    expectNoErrors();
  });

  it("a failed node shows its error on the node and in the panel", async () => {
    const { pipeline } = await env.api.ok("POST", "/pipelines", { title: "Failure" });
    await env.api.ok("POST", `/pipelines/${pipeline.id}/nodes`, {
      id: "bad",
      title: "Not a video",
      type: "asset",
      asset: { type: "video" },
      position: { x: 0, y: 0 },
    });
    await env.api.ok("PUT", `/pipelines/${pipeline.id}/nodes/bad/asset`, new TextEncoder().encode("this is not a video at all\n".repeat(20)), {
      "content-type": "video/mp4",
    });

    const { page, expectNoErrors } = await openPage(env.browser);
    await page.goto(`${env.web.url}/pipelines/${pipeline.id}`);
    await page.locator('[data-testid="live-status"][data-live="live"]').waitFor();
    await page.getByTestId("execute-bad").click();
    await page.locator('[data-testid="status-bad"][data-status="failed"]').waitFor({ timeout: 60_000 });
    const stored = (await nodeRow(pipeline.id, "bad")).metadata.error as string;
    expect(stored.length).toBeGreaterThan(0);
    expect(await page.getByTestId("error-bad").textContent()).toBe(stored);
    await page.locator(node("bad")).click({ position: { x: 120, y: 20 } });
    expect(await page.getByTestId("panel-error").textContent()).toBe(stored);
    await page.locator('[data-testid="pipeline-progress"]', { hasText: "1 failed" }).waitFor();
    expectNoErrors();
  });

  it("the list renames and deletes pipelines; an unknown pipeline gets a readable message", async () => {
    const { pipeline } = await env.api.ok("POST", "/pipelines", { title: "To rename" });
    const { page, expectNoErrors } = await openPage(env.browser);
    await page.goto(env.web.url);
    const row = page.locator(`[data-testid="pipeline-row"][data-id="${pipeline.id}"]`);
    await row.waitFor();
    await row.getByRole("button", { name: "Rename" }).click();
    await row.getByLabel("Pipeline title").fill("Renamed in the list");
    await row.getByRole("button", { name: "Save" }).click();
    await row.getByRole("link", { name: "Renamed in the list" }).waitFor();
    expect((await env.db.admin.query("select title from video_production_pipelines where id = $1", [pipeline.id])).rows[0].title).toBe("Renamed in the list");

    await row.getByRole("button", { name: "Delete" }).click();
    await row.getByRole("button", { name: "Yes, delete" }).click();
    await row.waitFor({ state: "detached" });
    expect((await env.db.admin.query("select count(*)::int as n from video_production_pipelines where id = $1", [pipeline.id])).rows[0].n).toBe(0);

    await page.goto(`${env.web.url}/pipelines/no-such-pipeline`);
    await page.getByTestId("error-state").waitFor();
    expect(await page.getByTestId("error-state").textContent()).toMatch(/^Pipeline not foundThere is no pipeline with the id "no-such-pipeline"/);
    expectNoErrors(/^console\.error: Failed to load resource: the server responded with a status of 404 .*\/pipelines\/no-such-pipeline\)$/);
  });
});
