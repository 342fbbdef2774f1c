/**
 * What a producer reads and does in the editor, in Chromium against the real services: the pipelines list searched
 * by title and kept in order after a rename; a local AI node's cost shown as compute on this machine (under a cent
 * as "< $0.01", exact on hover); one status label and one "Fit view"; an estimate over budget shown with amounts
 * that differ, Start run off with the reason, and the gateway's refusal naming nodes by title; a result marked
 * "Outdated" after an edit until a run replaces it; a node switched off, greyed and skipped by Run all; undo and
 * redo; copy, paste and duplicate; the shortcut sheet, node search and context menu; drops on the canvas (a palette
 * item, a connection); a merge's timeline; auto-layout of 30 nodes.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeTestClip } from "@vp/media";
import { formatUsd, formatUsdApart } from "@vp/flow-graph";
import { exactCost } from "../../web/lib/format";
import { centre, node, openPage, screenshot, startEditorStack, type EditorStack, storedNode, openEditor as openEditorOf } from "./harness";

let env: EditorStack;

beforeAll(async () => {
  env = await startEditorStack();
}, 300_000);

afterAll(async () => {
  await env?.cleanup();
});

/** The refusal a test provokes shows in the console as a failed load; nothing else may. */
const refusedRun = /^console\.error: Failed to load resource: the server responded with a status of 422 .*\/pipelines\/[^/]+\/nodes\/[^/]+\/execute\)$/;

const SCRIPT = "Welcome back to the show. Today we read twenty words aloud on this machine, slowly and clearly, for the draft.";

/** A text script and a local voiceover of it ("Voiceover", id voice). */
async function localVoicePipeline(title: string): Promise<string> {
  const { pipeline } = await env.api.ok("POST", "/pipelines", { title });
  const p = `/pipelines/${pipeline.id}/nodes`;
  await env.api.ok("POST", p, { id: "script", title: "Script", type: "asset", asset: { type: "text", content: SCRIPT }, position: { x: 0, y: 80 } });
  await env.api.ok("POST", p, {
    id: "voice",
    title: "Voiceover",
    type: "generate-voiceover",
    inputs: { script: ["script"] },
    config: { provider: "local" },
    position: { x: 380, y: 60 },
  });
  return pipeline.id;
}

const openEditor = (pipelineId: string) => openEditorOf(env, pipelineId);

const nodeRow = (pipelineId: string, nodeId: string) => storedNode(env, pipelineId, nodeId);

describe("the editor, as a producer reads it", () => {
  it("the pipelines list: a search box filters by title; a renamed pipeline takes its place in the order, as after a reload", async () => {
    const ids: string[] = [];
    for (const title of ["Alpha reel", "Beta teaser", "Gamma promo"]) ids.push((await env.api.ok("POST", "/pipelines", { title })).pipeline.id);
    const [alpha, beta, gamma] = ids as [string, string, string];
    const { page, expectNoErrors } = await openPage(env.browser);
    await page.goto(env.web.url);
    await page.getByTestId("pipeline-table").waitFor();
    const order = async () =>
      (await page.locator('[data-testid="pipeline-row"]').evaluateAll((rows) => rows.map((r) => r.getAttribute("data-id")))).filter((id) => ids.includes(id!));
    const titles = () => page.locator('[data-testid="pipeline-row"] .pipeline-link').allTextContents();
    // Last updated first, as the gateway lists them.
    expect(await order()).toEqual([gamma, beta, alpha]);

    // Search: case-insensitive, by every word typed; nothing matching says so.
    const search = page.getByTestId("pipeline-search");
    await search.fill("TEASER");
    await page.locator('[data-testid="pipeline-row"]').first().waitFor();
    expect(await titles()).toEqual(["Beta teaser"]);
    await screenshot(page, "polish-01-list-search");
    await search.fill("reel alpha");
    expect(await titles()).toEqual(["Alpha reel"]);
    await search.fill("finale");
    await page.getByTestId("no-matches").waitFor();
    expect(await page.getByTestId("no-matches").textContent()).toBe("No pipeline title matches “finale”.");
    expect(await page.locator('[data-testid="pipeline-row"]').count()).toBe(0);
    await search.fill("");
    await page.locator(`[data-testid="pipeline-row"][data-id="${alpha}"]`).waitFor();

    // Rename the oldest: it was just updated, so it moves to the top, where a reload puts it too.
    const row = page.locator(`[data-testid="pipeline-row"][data-id="${alpha}"]`);
    await row.getByRole("button", { name: "Rename" }).click();
    await row.getByLabel("Pipeline title").fill("Alpha reel, final cut");
    await row.getByRole("button", { name: "Save" }).click();
    await row.locator(".pipeline-link", { hasText: "Alpha reel, final cut" }).waitFor();
    expect(await order()).toEqual([alpha, gamma, beta]);
    await screenshot(page, "polish-02-list-renamed");
    await page.reload();
    await page.getByTestId("pipeline-table").waitFor();
    expect(await order()).toEqual([alpha, gamma, beta]);
    // The search still finds it under its new title.
    await page.getByTestId("pipeline-search").fill("final");
    expect(await titles()).toEqual(["Alpha reel, final cut"]);
    expectNoErrors();
  });

  it('a local voiceover: its cost is compute on this machine, under a cent as "< $0.01" with the exact amount on hover; one status label, one Fit view', async () => {
    const P = await localVoicePipeline("Local compute");
    const { page, expectNoErrors } = await openEditor(P);

    // One "Fit view": the header's; the canvas controls only zoom.
    expect(await page.getByRole("button", { name: /fit view/i }).count()).toBe(1);
    expect(await page.locator(".react-flow__controls-fitview").count()).toBe(0);
    expect(await page.locator(".react-flow__controls-zoomin").count()).toBe(1);

    // Before the run: the estimate reads as compute, exact on hover.
    const estimate = page.getByTestId("estimate-voice");
    const estimated = Number(await estimate.getAttribute("data-estimate"));
    expect(estimated).toBeGreaterThan(0);
    expect(estimated).toBeLessThan(0.005);
    expect(await estimate.textContent()).toBe("est. < $0.01 compute");
    expect(await estimate.getAttribute("title")).toBe(`Compute on this machine (no provider fee): ${exactCost(estimated)}`);
    expect(exactCost(estimated)).toMatch(/^\$0\.0000\d*[1-9]$/);

    // The panel: the provider says what local costs, the status shows once.
    await page.locator(node("voice")).click({ position: { x: 120, y: 20 } });
    await page.getByTestId("node-panel").waitFor();
    expect(await page.getByTestId("field-provider").locator("option:checked").textContent()).toBe("Local draft (this machine: compute only, no provider fee)");
    expect(await page.getByTestId("panel-estimate").textContent()).toMatch(/^Estimated compute cost < \$0\.01/);
    expect(await page.getByTestId("panel-estimated").getAttribute("title")).toBe(exactCost(estimated));
    const runSection = page.getByTestId("node-panel").locator("section.panel-section", { has: page.locator("h3", { hasText: /^Run$/ }) });
    expect(await page.getByTestId("panel-status").textContent()).toBe("Pending");
    expect((await runSection.textContent())?.match(/Pending/g)).toHaveLength(1);
    await screenshot(page, "polish-03-local-estimate");

    // Run it: the recorded cost is compute, shown the same way, exact on hover.
    await page.getByTestId("run-all").click();
    await page.getByTestId("start-run").click();
    await page.locator('[data-testid="status-voice"][data-status="completed"]').waitFor({ timeout: 120_000 });
    const row = await nodeRow(P, "voice");
    expect(row.metadata.provider).toBe("local");
    expect(row.metadata.cost).toBeGreaterThan(0);
    const cost = page.locator(`[data-testid="cost-voice"][data-cost="${row.metadata.cost}"]`);
    await cost.waitFor();
    expect(await cost.textContent()).toMatch(/^< \$0\.01 compute · \d+\.\d s$/);
    expect(await cost.getAttribute("title")).toBe(`Compute on this machine (no provider fee): ${exactCost(row.metadata.cost)}`);
    expect(await page.getByTestId("panel-estimate").textContent()).toMatch(/^Compute cost < \$0\.01/);
    expect(await page.getByTestId("panel-status").textContent()).toBe("Completed");
    expect((await runSection.textContent())?.match(/Completed/g)).toHaveLength(1);
    // Nowhere does an amount read with a tail of zeros ($0.00013, $0.0000030).
    expect((await page.locator("body").allInnerTexts()).join("\n")).not.toMatch(/\$0\.000/);
    await screenshot(page, "polish-04-local-cost");
    expectNoErrors();
  }, 240_000);

  it("over budget: amounts that differ, Start run off with the reason, and the gateway's refusal naming the node by title", async () => {
    const P = await localVoicePipeline("Tiny budget");
    const { page, expectNoErrors } = await openEditor(P);
    const chip = page.locator('[data-testid="run-estimate"][data-origin="gateway"]');
    await chip.waitFor();
    const estimated = Number(await chip.getAttribute("data-estimate"));
    expect(estimated).toBeGreaterThan(0);
    expect(estimated).toBeLessThan(0.005);

    // A budget of $0: the estimate is over it, and the two never read the same.
    await page.getByTestId("run-all").click();
    await page.getByTestId("run-dialog").waitFor();
    await expectStartEnabled(page, true);
    await page.getByTestId("budget-input").fill("0");
    await page.getByTestId("budget-save").click();
    await page.locator('[data-testid="run-estimate"][data-budget="0"][data-over="true"]').waitFor();
    const [shownEstimate, shownBudget] = formatUsdApart(estimated, 0) as [string, string];
    expect(shownEstimate).not.toBe(shownBudget);
    expect(shownEstimate).toMatch(/^\$0\.0+[1-9]$/);
    expect(await page.getByTestId("dialog-estimated-total").textContent()).toBe(shownEstimate);
    expect(await page.getByTestId("dialog-estimated-total").getAttribute("title")).toBe(exactCost(estimated));
    expect(await page.getByTestId("dialog-budget").textContent()).toBe(shownBudget);
    expect(await page.getByTestId("run-estimate").textContent()).toBe(`Estimate ${shownEstimate} · budget ${shownBudget} over budget`);

    // Start run is off, and says why.
    await expectStartEnabled(page, false);
    expect(await page.getByTestId("start-run").getAttribute("title")).toBe("Over budget: raise or clear the budget to start this run");
    expect(await page.getByTestId("over-budget").textContent()).toBe(
      `Over budget by ${formatUsd(estimated)}: the gateway would refuse this run, so Start run is off. Raise or clear the budget.`,
    );
    await screenshot(page, "polish-05-over-budget");

    // Run to here is still offered: the gateway refuses it, naming the node by title with its id, amounts that differ.
    await page.keyboard.press("Escape");
    await page.getByTestId("run-dialog").waitFor({ state: "detached" });
    await page.getByTestId("run-to-here-voice").click();
    const refused = page.getByTestId("run-refused");
    await refused.waitFor();
    expect(await refused.getByTestId("refusal-message").textContent()).toBe(
      `Estimated cost ${shownEstimate} exceeds the pipeline's budget (maxCost) of ${shownBudget}: "Voiceover" (voice) ${formatUsd(estimated)}`,
    );
    expect(await refused.locator('[data-testid="estimate-node"][data-node="voice"] .estimate-node-title').textContent()).toBe("Voiceover voice");
    expect(await refused.locator('[data-testid="estimate-node"][data-node="voice"] [data-testid="node-id"]').textContent()).toBe("voice");
    expect(await refused.textContent()).toContain(`Estimated ${shownEstimate} against a budget of ${shownBudget}`);
    for (const id of ["script", "voice"]) expect((await nodeRow(P, id)).status).toBe("pending");
    await screenshot(page, "polish-06-budget-refused");

    // Cleared: Start run is on again.
    await page.getByTestId("dismiss-refusal").click();
    await page.getByTestId("run-all").click();
    await page.getByTestId("budget-clear").click();
    await page.locator('[data-testid="run-estimate"][data-budget=""][data-over="false"]').waitFor();
    await expectStartEnabled(page, true);
    expectNoErrors(refusedRun);
  }, 240_000);
});

describe("outdated results", () => {
  it("a changed speed marks the voiceover Outdated (card, panel, download) until a run makes it again", async () => {
    const P = await localVoicePipeline("Outdated after an edit");
    const { page, expectNoErrors } = await openEditor(P);
    await page.getByTestId("run-all").click();
    await page.getByTestId("start-run").click();
    await page.locator('[data-testid="status-voice"][data-status="completed"]').waitFor({ timeout: 120_000 });
    expect(await env.api.ok("GET", `/pipelines/${P}/outdated`)).toEqual({ node_ids: [] });
    await page.locator(node("voice")).click({ position: { x: 120, y: 20 } });
    await page.getByTestId("node-panel").waitFor();
    expect(await page.getByTestId("download-output").textContent()).toBe("Download output");
    expect(await page.getByTestId("panel-outdated").count()).toBe(0);
    const firstKey = (await nodeRow(P, "voice")).output.s3Key;

    // The producer changes the voice's speed: the node still holds the take made at the old speed, and says so.
    await page.getByTestId("field-speed").fill("1.5");
    const outdatedVoice = page.locator('[data-testid="status-voice"][data-outdated="true"]');
    await outdatedVoice.waitFor({ timeout: 10_000 });
    expect(await outdatedVoice.textContent()).toBe("Outdated");
    expect(await outdatedVoice.getAttribute("title")).toBe("Made before its config or an input changed: run it again to replace this result");
    expect(await page.getByTestId("panel-status").textContent()).toBe("Outdated");
    expect(await page.getByTestId("panel-outdated").textContent()).toMatch(/^This result is outdated/);
    expect(await page.getByTestId("download-output").textContent()).toBe("Download outdated output");
    expect(await env.api.ok("GET", `/pipelines/${P}/outdated`)).toEqual({ node_ids: ["voice"] });
    expect((await nodeRow(P, "voice")).config).toEqual({ provider: "local", speed: 1.5 });
    await screenshot(page, "polish-07-outdated");

    // Run all makes it again: a new result, and the mark is gone.
    await page.getByTestId("run-all").click();
    await page.getByTestId("start-run").click();
    await page.locator('[data-testid="status-voice"][data-status="completed"]:not([data-outdated])').waitFor({ timeout: 120_000 });
    await page.locator('[data-testid="download-output"]', { hasText: /^Download output$/ }).waitFor();
    expect(await page.getByTestId("panel-outdated").count()).toBe(0);
    expect((await nodeRow(P, "voice")).output.s3Key).not.toBe(firstKey);
    expect(await env.api.ok("GET", `/pipelines/${P}/outdated`)).toEqual({ node_ids: [] });
    await screenshot(page, "polish-08-outdated-replaced");
    expectNoErrors();
  }, 300_000);
});

describe("disabled nodes", () => {
  it("a node left unfinished blocks Run all until it is switched off: greyed, skipped by the run, switched on again", async () => {
    const { pipeline } = await env.api.ok("POST", "/pipelines", { title: "Switch a node off" });
    const P = pipeline.id as string;
    const nodes = `/pipelines/${P}/nodes`;
    await env.api.ok("POST", nodes, { id: "script", title: "Script", type: "asset", asset: { type: "text", content: SCRIPT }, position: { x: 0, y: 0 } });
    // An asset nobody filled in: every Run all is refused for it.
    await env.api.ok("POST", nodes, { id: "draft", title: "Unfinished note", type: "asset", asset: { type: "text" }, position: { x: 0, y: 260 } });
    const refused = await env.api.call("POST", `/pipelines/${P}/execute`, {});
    expect(refused.status).toBe(422);
    expect(refused.body.error).toMatch(/Unfinished note/);

    const { page, expectNoErrors } = await openEditor(P);
    await page.locator(node("draft")).click({ position: { x: 120, y: 20 } });
    await page.getByTestId("node-panel").waitFor();
    expect(await page.getByTestId("toggle-disabled").textContent()).toBe("Disable node");
    await page.getByTestId("toggle-disabled").click();
    await page.getByTestId("disabled-draft").waitFor();
    expect(await page.getByTestId("node-draft").getAttribute("class")).toMatch(/\bdisabled\b/);
    expect(await page.getByTestId("toggle-disabled").textContent()).toBe("Enable node");
    expect((await nodeRow(P, "draft")).disabled).toBe(true);
    await screenshot(page, "polish-09-node-disabled");

    // Run all now runs the rest; the switched-off node stays as it was.
    await page.getByTestId("run-all").click();
    await page.getByTestId("start-run").click();
    await page.locator('[data-testid="status-script"][data-status="completed"]').waitFor({ timeout: 60_000 });
    const { runs } = await env.api.ok("GET", `/pipelines/${P}/runs`);
    expect(runs[0]).toMatchObject({ node_ids: ["script"] });
    expect((await nodeRow(P, "draft")).status).toBe("pending");
    await screenshot(page, "polish-10-run-without-disabled");

    // Switched on again: no longer greyed, and the database says so.
    await page.getByTestId("toggle-disabled").click();
    await page.getByTestId("disabled-draft").waitFor({ state: "detached" });
    expect(await page.getByTestId("node-draft").getAttribute("class")).not.toMatch(/\bdisabled\b/);
    expect((await nodeRow(P, "draft")).disabled).toBe(false);
    expectNoErrors();
  }, 240_000);
});

describe("undo and redo", () => {
  /** Polls the database until `check` holds for the node's row (or its absence). */
  async function untilRow(P: string, id: string, check: (row: Record<string, unknown> | undefined) => boolean) {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const row = await nodeRow(P, id);
      if (check(row)) return row;
      if (Date.now() > deadline) throw new Error(`node ${id} never reached the expected state: ${JSON.stringify(row)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it("a config change, a disconnect, a delete and an added node are undone and redone, the database matching after each", async () => {
    const P = await localVoicePipeline("Undo and redo");
    const { page, expectNoErrors } = await openEditor(P);
    const undo = page.getByTestId("undo");
    const redo = page.getByTestId("redo");
    expect(await undo.isDisabled()).toBe(true);

    // A config change: undone, then redone, by the buttons.
    await page.locator(node("voice")).click({ position: { x: 120, y: 20 } });
    await page.getByTestId("field-speed").fill("1.5");
    await untilRow(P, "voice", (r) => (r?.config as { speed?: number })?.speed === 1.5);
    await page.locator('[data-testid="undo"]:not([disabled])').waitFor();
    expect(await undo.getAttribute("title")).toBe('Undo: Change speed of "Voiceover" (Ctrl+Z)');
    await screenshot(page, "polish-11-undo-config");
    await undo.click();
    await untilRow(P, "voice", (r) => JSON.stringify(r?.config) === JSON.stringify({ provider: "local" }));
    // The page shows the undo once the gateway has answered it, a moment after the row changed.
    await expect.poll(() => page.getByTestId("field-speed").inputValue(), { timeout: 10_000 }).toBe("");
    await expect.poll(() => redo.getAttribute("title"), { timeout: 10_000 }).toBe('Redo: Change speed of "Voiceover" (Ctrl+Shift+Z)');
    await redo.click();
    await untilRow(P, "voice", (r) => (r?.config as { speed?: number })?.speed === 1.5);

    // A disconnect in the panel, undone.
    await page.getByRole("button", { name: "Disconnect Script" }).click();
    await untilRow(P, "voice", (r) => JSON.stringify(r?.inputs) === JSON.stringify({ script: [] }));
    await undo.click();
    await untilRow(P, "voice", (r) => JSON.stringify(r?.inputs) === JSON.stringify({ script: ["script"] }));

    // Delete the voiceover, then bring it back with Ctrl+Z (outside a text field) and delete it again with Ctrl+Shift+Z.
    await page.getByTestId("delete-node").click();
    await untilRow(P, "voice", (r) => r === undefined);
    await page.locator(node("voice")).waitFor({ state: "detached" });
    await page.locator(".react-flow__pane").click({ position: { x: 20, y: 20 } });
    await page.keyboard.press("Control+z");
    const back = await untilRow(P, "voice", (r) => r !== undefined);
    expect(back).toMatchObject({ title: "Voiceover", type: "generate-voiceover", inputs: { script: ["script"] }, config: { provider: "local", speed: 1.5 } });
    await page.locator(node("voice")).waitFor();
    await screenshot(page, "polish-12-undo-delete");
    await page.keyboard.press("Control+Shift+z");
    await untilRow(P, "voice", (r) => r === undefined);
    await page.keyboard.press("Control+z");
    await untilRow(P, "voice", (r) => r !== undefined);

    // A node added from the palette, undone: gone from the canvas and the database.
    await page.getByTestId("palette-merge-videos").click();
    await untilRow(P, "merge-videos-1", (r) => r !== undefined);
    await page.locator(node("merge-videos-1")).waitFor();
    await undo.click();
    await untilRow(P, "merge-videos-1", (r) => r === undefined);
    await page.locator(node("merge-videos-1")).waitFor({ state: "detached" });
    expectNoErrors();
  }, 240_000);
});

describe("copy, paste and duplicate", () => {
  it("select all and copy in one pipeline, paste into another with the connection kept; duplicate in the panel, undone", async () => {
    const from = await localVoicePipeline("Copy from here");
    const { pipeline } = await env.api.ok("POST", "/pipelines", { title: "Paste into here" });
    const into = pipeline.id as string;
    const { page, expectNoErrors } = await openEditor(from);
    await page.locator(".react-flow__pane").click({ position: { x: 20, y: 20 } });
    await page.keyboard.press("Control+a");
    await page.locator(".react-flow__node.selected").nth(1).waitFor();
    await page.keyboard.press("Control+c");
    await page.getByText("Copied 2 nodes").waitFor();

    await page.goto(`${env.web.url}/pipelines/${into}`);
    await page.locator('[data-testid="live-status"][data-live="live"]').waitFor();
    await page.locator(".react-flow__pane").click({ position: { x: 20, y: 20 } });
    await page.keyboard.press("Control+v");
    await page.locator(node("voice")).waitFor();
    // The paste is over when it is recorded for undo (it then selects the pasted nodes, which must not land on
    // top of the click below).
    await page.locator('[data-testid="undo"][title="Undo: Paste 2 nodes (Ctrl+Z)"]').waitFor();
    const pasted = (
      await env.db.admin.query("select id, title, type, inputs, config, asset from video_production_nodes where pipeline_id = $1 order by id", [into])
    ).rows;
    expect(pasted).toEqual([
      { id: "script", title: "Script", type: "asset", inputs: {}, config: {}, asset: { type: "text", content: SCRIPT } },
      { id: "voice", title: "Voiceover", type: "generate-voiceover", inputs: { script: ["script"] }, config: { provider: "local" }, asset: null },
    ]);
    await screenshot(page, "polish-15-pasted");

    // Duplicate in the panel: a copy beside it, fed by the same script; one undo removes it.
    await page.locator(node("voice")).click({ position: { x: 120, y: 20 } });
    // A click on a pasted node selects it alone (whether the paste left one or both selected) and opens its panel.
    await page.getByRole("complementary", { name: "Voiceover settings" }).waitFor();
    await page.getByTestId("duplicate-node").click();
    await page.locator(node("generate-voiceover-1")).waitFor();
    expect(await nodeRow(into, "generate-voiceover-1")).toMatchObject({
      title: "Voiceover (copy)",
      inputs: { script: ["script"] },
      config: { provider: "local" },
    });
    expect(await page.getByTestId("undo").getAttribute("title")).toBe('Undo: Paste "Voiceover (copy)" (Ctrl+Z)');
    await page.getByTestId("undo").click();
    await page.locator(node("generate-voiceover-1")).waitFor({ state: "detached" });
    expect(await nodeRow(into, "generate-voiceover-1")).toBeUndefined();
    expectNoErrors();
  }, 240_000);
});

describe("menus and keyboard", () => {
  it("? lists the shortcuts; Ctrl+K finds a node type and adds it beside the selected node; a right-click menu disables, duplicates and deletes", async () => {
    const P = await localVoicePipeline("Menus and search");
    const { page, expectNoErrors } = await openEditor(P);
    await page.locator(".react-flow__pane").click({ position: { x: 20, y: 20 } });
    await page.keyboard.press("Shift+?");
    await page.getByTestId("shortcut-sheet").waitFor();
    expect(await page.getByTestId("shortcut-sheet").textContent()).toContain("Ctrl+Z");
    await screenshot(page, "polish-17-shortcuts");
    await page.keyboard.press("Escape");
    await page.getByTestId("shortcut-sheet").waitFor({ state: "detached" });

    // Search: with the voiceover selected, "merge" + Enter adds a merge to its right.
    await page.locator(node("voice")).click({ position: { x: 120, y: 20 } });
    await page.keyboard.press("Control+k");
    await page.getByTestId("node-search-input").fill("merge");
    expect(await page.locator('[data-testid^="node-search-item-"]').count()).toBe(1);
    await screenshot(page, "polish-18-node-search");
    await page.keyboard.press("Enter");
    await page.locator(node("merge-videos-1")).waitFor();
    const [voice, merge] = [await nodeRow(P, "voice"), await nodeRow(P, "merge-videos-1")];
    expect(merge.position.x).toBeGreaterThan(voice.position.x + 200);
    expect(merge.position.y).toBe(voice.position.y);

    // The context menu.
    await page.locator(node("voice")).click({ button: "right", position: { x: 120, y: 20 } });
    await page.getByTestId("node-menu").waitFor();
    await screenshot(page, "polish-19-node-menu");
    await page.getByTestId("menu-toggle-disabled").click();
    await page.getByTestId("disabled-voice").waitFor();
    expect((await nodeRow(P, "voice")).disabled).toBe(true);
    await page.locator(node("voice")).click({ button: "right", position: { x: 120, y: 20 } });
    expect(await page.getByTestId("menu-toggle-disabled").textContent()).toBe("Enable");
    await page.getByTestId("menu-duplicate").click();
    await page.locator(node("generate-voiceover-1")).waitFor();
    await page.locator(node("generate-voiceover-1")).click({ button: "right", position: { x: 120, y: 20 } });
    await page.getByTestId("menu-delete").click();
    await page.locator(node("generate-voiceover-1")).waitFor({ state: "detached" });
    expect(await nodeRow(P, "generate-voiceover-1")).toBeUndefined();
    expectNoErrors();
  }, 240_000);
});

describe("dropping on the canvas", () => {
  it("a palette item dragged onto the canvas lands there; a connection dropped on empty canvas offers the types that take it and connects the one picked", async () => {
    const P = await localVoicePipeline("Drops");
    const { page, expectNoErrors } = await openEditor(P);
    const canvas = await page.locator(".react-flow__pane").boundingBox();

    // From the palette, let go low on the canvas: the node is created there (not in the palette's column).
    await page.getByTestId("palette-merge-videos").dragTo(page.locator(".react-flow__pane"), { targetPosition: { x: 80, y: canvas!.height - 120 } });
    await page.locator(node("merge-videos-1")).waitFor();
    const dropped = await page.locator(node("merge-videos-1")).boundingBox();
    expect(Math.abs(dropped!.x - (canvas!.x + 80))).toBeLessThan(30);
    expect(Math.abs(dropped!.y - (canvas!.y + canvas!.height - 120))).toBeLessThan(30);

    // A connection out of the voiceover, dropped on empty canvas: a node that takes audio, fed by it.
    const from = await centre(page, `${node("voice")} .react-flow__handle.source`);
    await page.mouse.move(from.x, from.y);
    await page.mouse.down();
    await page.mouse.move(from.x + 80, from.y + 150, { steps: 8 });
    await page.mouse.up();
    await page.getByTestId("node-search").waitFor();
    expect(await page.getByTestId("node-search").locator("h2").textContent()).toBe('Add a node fed by "Voiceover"');
    const offered = await page.locator('[data-testid^="node-search-item-"]').evaluateAll((els) => els.map((el) => el.getAttribute("data-testid")!.slice(17)));
    expect(offered).toContain("mix-audio");
    expect(offered).not.toContain("merge-videos");
    await screenshot(page, "polish-20-connection-dropped");
    await page.getByTestId("node-search-item-mix-audio").click();
    await page.locator(node("mix-audio-1")).waitFor();
    expect((await nodeRow(P, "mix-audio-1")).inputs).toEqual({ audio: ["voice"] });
    expectNoErrors();
  }, 240_000);
});

describe("a merge's timeline", () => {
  it("shows each segment's duration and start in play order; a click plays the merged output from that segment", async () => {
    const { pipeline } = await env.api.ok("POST", "/pipelines", { title: "Timeline" });
    const P = pipeline.id as string;
    for (const [id, seconds, y] of [
      ["short", 1, 0],
      ["long", 2, 260],
    ] as const) {
      const path = join(env.scratch, `${id}.mp4`);
      await makeTestClip({ path, durationSeconds: seconds, width: 160, height: 120, fps: 15 });
      await env.api.ok("POST", `/pipelines/${P}/nodes`, { id, title: `Clip ${id}`, type: "asset", asset: { type: "video" }, position: { x: 0, y } });
      await env.api.ok("PUT", `/pipelines/${P}/nodes/${id}/asset`, new Uint8Array(await readFile(path)), { "content-type": "video/mp4" });
    }
    await env.api.ok("POST", `/pipelines/${P}/nodes`, {
      id: "m",
      title: "Sequence",
      type: "merge-videos",
      inputs: { segments: ["long", "short", "long"] },
      position: { x: 400, y: 100 },
    });
    const { page, expectNoErrors } = await openEditor(P);
    await page.getByTestId("run-all").click();
    await page.getByTestId("start-run").click();
    await page.locator('[data-testid="status-m"][data-status="completed"]').waitFor({ timeout: 120_000 });
    await page.locator(node("m")).click({ position: { x: 120, y: 20 } });
    await page.getByTestId("merge-timeline").waitFor();

    const segments = await page
      .getByTestId("timeline-segment")
      .evaluateAll((els) => els.map((el) => [el.getAttribute("data-id"), Number(el.getAttribute("data-start")), Number(el.getAttribute("data-duration"))]));
    expect(segments.map(([id]) => id)).toEqual(["long", "short", "long"]);
    const [long, short] = [Number(segments[0]![2]), Number(segments[1]![2])];
    expect(Math.abs(long - 2)).toBeLessThan(0.1);
    expect(Math.abs(short - 1)).toBeLessThan(0.1);
    expect(segments.map(([, start]) => start)).toEqual([0, long, long + short]);
    expect(await page.getByTestId("timeline-total").textContent()).toBe(`${(2 * long + short).toFixed(1)} s in 3 segments`);
    // The merged output lasts what the timeline adds up to.
    expect(Math.abs((await nodeRow(P, "m")).output.duration - (2 * long + short))).toBeLessThan(0.2);

    await page.getByTestId("timeline-segment").nth(2).locator("button").click();
    const video = page.getByTestId("panel-output-video-m");
    await page.waitForFunction(
      ([selector, from]) => (document.querySelector(selector as string) as HTMLVideoElement | null)!.currentTime >= (from as number) - 0.05,
      ['[data-testid="panel-output-video-m"]', long + short],
    );
    expect(await video.evaluate((v: HTMLVideoElement) => v.currentTime)).toBeGreaterThanOrEqual(long + short - 0.05);
    await screenshot(page, "polish-16-timeline");
    expectNoErrors();
  }, 240_000);
});

describe("auto-layout", () => {
  it("30 nodes piled on top of each other: Auto-layout spreads them left to right with no two boxes overlapping, saved, and undoable", async () => {
    const { pipeline } = await env.api.ok("POST", "/pipelines", { title: "Thirty nodes in a pile" });
    const P = pipeline.id as string;
    const add = (body: Record<string, unknown>, i: number) =>
      env.api.ok("POST", `/pipelines/${P}/nodes`, { ...body, title: body.id, position: { x: (i % 5) * 8, y: (i % 7) * 8 } });
    let i = 0;
    for (let k = 0; k < 10; k++) await add({ id: `clip${k}`, type: "asset", asset: { type: "video" } }, i++);
    for (let k = 0; k < 10; k++) await add({ id: `pair${k}`, type: "merge-videos", inputs: { segments: [`clip${k}`, `clip${(k + 1) % 10}`] } }, i++);
    for (let k = 0; k < 9; k++) await add({ id: `joined${k}`, type: "merge-videos", inputs: { segments: [`pair${k}`, `pair${k + 1}`] } }, i++);
    await add({ id: "final", type: "merge-videos", inputs: { segments: Array.from({ length: 9 }, (_, k) => `joined${k}`) } }, i++);

    const { page, expectNoErrors } = await openEditor(P);
    const boxesOnScreen = () =>
      page.locator(".react-flow__node").evaluateAll((els) =>
        els.map((el) => {
          const r = el.getBoundingClientRect();
          return { id: el.getAttribute("data-id")!, x: r.x, y: r.y, width: r.width, height: r.height };
        }),
      );
    type Box = Awaited<ReturnType<typeof boxesOnScreen>>[number];
    const overlaps = (all: Box[]) =>
      all.flatMap((a, k) =>
        all.slice(k + 1).filter((b) => a.x < b.x + b.width - 0.5 && b.x < a.x + a.width - 0.5 && a.y < b.y + b.height - 0.5 && b.y < a.y + a.height - 0.5),
      );
    expect((await boxesOnScreen()).length).toBe(30);
    expect(overlaps(await boxesOnScreen()).length).toBeGreaterThan(0);
    await screenshot(page, "polish-13-pile");

    await page.getByTestId("auto-layout").click();
    // Saved: every node's stored position moved off the pile.
    const deadline = Date.now() + 15_000;
    let rows: Array<{ id: string; position: { x: number; y: number } }> = [];
    for (;;) {
      rows = (await env.db.admin.query("select id, position from video_production_nodes where pipeline_id = $1", [P])).rows;
      if (rows.every((r) => r.position.x > 40 || r.position.y > 48 || r.id.startsWith("clip"))) break;
      if (Date.now() > deadline) throw new Error(`positions not saved: ${JSON.stringify(rows)}`);
      await new Promise((r) => setTimeout(r, 150));
    }
    await page.waitForTimeout(500);
    const laidOut = await boxesOnScreen();
    expect(overlaps(laidOut)).toEqual([]);
    // Data flows left to right: every merge sits to the right of its inputs.
    const at = new Map(laidOut.map((b) => [b.id, b]));
    expect(at.get("final")!.x).toBeGreaterThan(at.get("joined0")!.x);
    expect(at.get("joined0")!.x).toBeGreaterThan(at.get("pair0")!.x);
    expect(at.get("pair0")!.x).toBeGreaterThan(at.get("clip0")!.x);
    await screenshot(page, "polish-14-auto-layout");
    // Fitted to the screen, 30 cards are small: each shows its title large enough to read (at least 10 px on screen).
    await page.getByTestId("fit-view").click();
    await page.waitForTimeout(500);
    await page.locator(".node-card.compact").first().waitFor();
    const titleHeights = await page.locator(".node-card .node-title").evaluateAll((els) => els.map((el) => el.getBoundingClientRect().height));
    expect(titleHeights).toHaveLength(30);
    expect(Math.min(...titleHeights)).toBeGreaterThanOrEqual(10);
    await screenshot(page, "polish-14b-fit-compact");

    // One undo puts the pile back, in the database too.
    expect(await page.getByTestId("undo").getAttribute("title")).toBe("Undo: Auto-layout (Ctrl+Z)");
    await page.getByTestId("undo").click();
    const back = Date.now() + 15_000;
    for (;;) {
      rows = (await env.db.admin.query("select id, position from video_production_nodes where pipeline_id = $1", [P])).rows;
      if (rows.every((r) => r.position.x <= 32 && r.position.y <= 48)) break;
      if (Date.now() > back) throw new Error(`positions not restored: ${JSON.stringify(rows)}`);
      await new Promise((r) => setTimeout(r, 150));
    }
    expectNoErrors();
  }, 240_000);
});

async function expectStartEnabled(page: import("playwright-core").Page, enabled: boolean) {
  await page.locator(`[data-testid="start-run"]${enabled ? ":not([disabled])" : "[disabled]"}`).waitFor();
}
