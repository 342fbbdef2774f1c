/**
 * Two people on one pipeline, in Chromium against the real services (each browser context signed in with the dev
 * login, as `npm start` runs it): what one does appears in the other's editor within a second with a notice of who
 * did it; an edit based on a config someone else has since changed shows the conflict instead of overwriting it;
 * the versions list shows every change and restores an earlier version for both.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Page } from "playwright-core";
import { node, openPage, screenshot, startEditorStack, type EditorStack, storedNode, openEditor as openEditorOf } from "./harness";

let env: EditorStack;

beforeAll(async () => {
  env = await startEditorStack();
}, 300_000);

afterAll(async () => {
  await env?.cleanup();
});

async function pipelineWithVoiceover(title: string): Promise<string> {
  const { pipeline } = await env.api.ok("POST", "/pipelines", { title });
  const p = `/pipelines/${pipeline.id}/nodes`;
  await env.api.ok("POST", p, { id: "script", title: "Script", type: "asset", asset: { type: "text", content: "Hello there." }, position: { x: 0, y: 80 } });
  await env.api.ok("POST", p, {
    id: "voice",
    title: "Voiceover",
    type: "generate-voiceover",
    inputs: { script: ["script"] },
    config: { provider: "local", speed: 1 },
    position: { x: 380, y: 60 },
  });
  return pipeline.id;
}

const openEditor = (pipelineId: string) => openEditorOf(env, pipelineId);

const nodeRow = (pipelineId: string, nodeId: string) => storedNode(env, pipelineId, nodeId);

/** Milliseconds until `predicate` holds in the page (polled every 20 ms), failing after `limitMs`. */
async function within(page: Page, limitMs: number, predicate: () => Promise<boolean>): Promise<number> {
  const start = Date.now();
  while (!(await predicate())) {
    if (Date.now() - start > limitMs) throw new Error(`not seen within ${limitMs} ms`);
    await page.waitForTimeout(20);
  }
  return Date.now() - start;
}

async function openPanel(page: Page, nodeId: string) {
  await page.locator(`${node(nodeId)} .node-title`).click();
  await page.getByTestId("node-panel").waitFor();
}

describe("live structure across editors", () => {
  it("a change in one editor shows in the other within a second, with who made it", async () => {
    const P = await pipelineWithVoiceover("Two editors");
    const a = await openEditor(P);
    const b = await openEditor(P);

    // A config change: B's form follows (B has the node open, not being edited).
    await openPanel(b.page, "voice");
    await openPanel(a.page, "voice");
    await a.page.getByTestId("field-speed").fill("1.5");
    await a.page.locator('[data-testid="config-save-state"]', { hasText: "Saved" }).waitFor();
    expect((await nodeRow(P, "voice")).config).toEqual({ provider: "local", speed: 1.5 });
    const configMs = await within(b.page, 1000, async () => (await b.page.getByTestId("field-speed").inputValue()) === "1.5");
    await b.page.locator('[data-testid="toast"]', { hasText: 'dev changed "Voiceover"' }).waitFor();

    // A new node from the palette, a rename and a deletion.
    await a.page.getByTestId("palette-merge-videos").click();
    const added = await within(b.page, 5000, async () => (await b.page.locator(".react-flow__node").count()) === 3);
    const { rows } = await env.db.admin.query("select id, title from video_production_nodes where pipeline_id = $1 and type = 'merge-videos'", [P]);
    expect(rows).toHaveLength(1);
    const mergeId = rows[0].id as string;
    await b.page.locator(node(mergeId)).waitFor();

    await a.page.locator(`${node("script")} .node-title`).click();
    await a.page.getByTestId("panel-title").fill("Opening lines");
    await within(b.page, 2000, async () => (await b.page.locator(`${node("script")} .node-title`).textContent())?.includes("Opening lines") === true);
    expect((await nodeRow(P, "script")).title).toBe("Opening lines");

    await a.page.locator(`${node(mergeId)} .node-title`).click();
    await a.page.getByTestId("delete-node").click();
    const removed = await within(b.page, 1000, async () => (await b.page.locator(node(mergeId)).count()) === 0);
    expect(await nodeRow(P, mergeId)).toBeUndefined();
    await screenshot(b.page, "live-01-other-editor");
    expect(configMs).toBeLessThan(1000);
    expect(removed).toBeLessThan(1000);
    expect(added).toBeLessThan(5000);
    a.expectNoErrors();
    b.expectNoErrors();
  });

  it("an edit based on a config changed elsewhere shows the conflict; nothing is overwritten until the producer chooses", async () => {
    const P = await pipelineWithVoiceover("Conflicting edits");
    const a = await openEditor(P);
    const b = await openEditor(P);
    await openPanel(a.page, "voice");
    await openPanel(b.page, "voice");

    // B's save leaves while A's has not landed yet: B's request is held until A's change is stored.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    await b.page.route(`**/pipelines/${P}/nodes/voice`, async (route) => {
      if (route.request().method() === "PATCH") await held;
      await route.continue();
    });
    await b.page.getByTestId("field-speed").fill("0.5");
    await b.page.locator('[data-testid="config-save-state"]', { hasText: "Saving" }).waitFor();
    await a.page.getByTestId("field-speed").fill("1.5");
    await a.page.locator('[data-testid="config-save-state"]', { hasText: "Saved" }).waitFor();
    release();

    const conflict = b.page.getByTestId("config-conflict");
    await conflict.waitFor();
    expect(await conflict.textContent()).toContain('"Voiceover" was changed by dev since you loaded it; your change was not saved');
    expect(await conflict.textContent()).toContain('Yours: {"speed":0.5}');
    expect(await conflict.textContent()).toContain('Now stored: {"speed":1.5}');
    expect((await nodeRow(P, "voice")).config.speed).toBe(1.5);
    // B's field keeps what its producer typed until they choose.
    expect(await b.page.getByTestId("field-speed").inputValue()).toBe("0.5");
    await screenshot(b.page, "live-02-conflict");

    await b.page.unroute(`**/pipelines/${P}/nodes/voice`);
    await b.page.getByTestId("conflict-keep-mine").click();
    await b.page.getByTestId("config-conflict").waitFor({ state: "detached" });
    expect((await nodeRow(P, "voice")).config.speed).toBe(0.5);
    await within(a.page, 1000, async () => (await a.page.getByTestId("field-speed").inputValue()) === "0.5");

    // The other way out: take theirs.
    await a.page.route(`**/pipelines/${P}/nodes/voice`, async (route) => {
      if (route.request().method() === "PATCH") await new Promise((r) => setTimeout(r, 1500));
      await route.continue();
    });
    await a.page.getByTestId("field-speed").fill("2");
    await a.page.locator('[data-testid="config-save-state"]', { hasText: "Saving" }).waitFor();
    await b.page.getByTestId("field-speed").fill("0.75");
    await b.page.locator('[data-testid="config-save-state"]', { hasText: "Saved" }).waitFor();
    await a.page.getByTestId("config-conflict").waitFor();
    await a.page.getByTestId("conflict-use-theirs").click();
    expect(await a.page.getByTestId("field-speed").inputValue()).toBe("0.75");
    expect((await nodeRow(P, "voice")).config.speed).toBe(0.75);
    // Refused writes answer 409: the only errors the pages may log.
    const conflicts = /Failed to load resource: the server responded with a status of 409/;
    a.expectNoErrors(conflicts);
    b.expectNoErrors(conflicts);
  });

  it("the versions list shows every change, and restoring one brings it back in both editors", async () => {
    const P = await pipelineWithVoiceover("Versions");
    await env.api.ok("PATCH", `/pipelines/${P}/nodes/voice`, { config: { speed: 2 } });
    await env.api.ok("PATCH", `/pipelines/${P}/nodes/script`, { asset: { content: "A different opening." } });
    await env.api.ok("POST", `/pipelines/${P}/nodes`, {
      id: "extra",
      title: "Extra clip",
      type: "asset",
      asset: { type: "text", content: "x" },
      position: { x: 0, y: 300 },
    });
    const a = await openEditor(P);
    const b = await openEditor(P);

    await a.page.getByTestId("versions-button").click();
    const rows = a.page.getByTestId("version-row");
    await rows.first().waitFor();
    expect(await rows.evaluateAll((els) => els.map((e) => e.querySelector(".version-summary")?.textContent))).toEqual([
      "Added Extra clip",
      "Changed content of Script",
      "Changed config of Voiceover",
      "Added Voiceover",
      "Added Script",
    ]);
    expect(await rows.first().textContent()).toContain("Current · v5");
    await a.page.locator('[data-testid="version-row"][data-revision="2"]').click();
    const detail = a.page.getByTestId("version-detail");
    await detail.waitFor();
    expect(await detail.textContent()).toContain("2 nodes");
    await screenshot(a.page, "live-03-versions");
    await a.page.getByTestId("version-restore").click();
    await a.page.locator('[data-testid="toast"]', { hasText: "Restored version 2 (now version 6" }).waitFor();

    // Both editors show version 2's structure, and so does the database.
    for (const page of [a.page, b.page]) {
      await within(page, 1000, async () => (await page.locator(node("extra")).count()) === 0);
    }
    expect(await nodeRow(P, "extra")).toBeUndefined();
    expect((await nodeRow(P, "voice")).config).toEqual({ provider: "local", speed: 1 });
    expect((await nodeRow(P, "script")).asset).toEqual({ type: "text", content: "Hello there." });
    await a.page.locator('[data-testid="version-row"][data-revision="6"]').waitFor();
    expect(await a.page.locator('[data-testid="version-row"][data-revision="6"] .version-summary').textContent()).toBe("Restored revision 2");
    await b.page.locator('[data-testid="toast"]', { hasText: "dev " }).first().waitFor();
    await screenshot(b.page, "live-04-restored-elsewhere");
    a.expectNoErrors();
    b.expectNoErrors();
  });
});
