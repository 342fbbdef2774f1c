/**
 * Variables and batches in Chromium against the real services (local voiceover only): a variable declared in the
 * Variables column, a text asset's {{name}} shown as a known placeholder (an undeclared one marked), deleting the
 * variable while it is used refused with the node that uses it, then the
 * Batches page: a CSV with bad rows refused with its problems by row and column, a good CSV of three rows checked
 * and priced, started, and its live row table followed until every row completed, with a row's result and the
 * batch's zip downloaded; last, a video asset bound to a video variable in its panel.
 */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { node, screenshot, startEditorStack, storedNode, type EditorStack, openEditor } from "./harness";

let env: EditorStack;

beforeAll(async () => {
  env = await startEditorStack();
}, 300_000);

afterAll(async () => {
  await env?.cleanup();
});

/** A text script and a local voiceover of it. */
async function voicePipeline(title: string): Promise<string> {
  const { pipeline } = await env.api.ok("POST", "/pipelines", { title });
  const p = `/pipelines/${pipeline.id}/nodes`;
  await env.api.ok("POST", p, { id: "script", title: "Script", type: "asset", asset: { type: "text", content: "Hello" }, position: { x: 0, y: 80 } });
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

describe("variables and batches in the editor", () => {
  it("declares a variable, uses it in a text, checks a CSV, runs a batch of three live and downloads a result", async () => {
    const P = await voicePipeline("Greetings");
    const { page, expectNoErrors } = await openEditor(env, P);

    // The Variables column: one text variable, `name`, without a default (each row gives it).
    await page.getByTestId("variables-button").click();
    await page.getByTestId("variables-panel").waitFor();
    await page.getByTestId("variable-add").click();
    await page.getByTestId("variable-name").fill("name");
    await page.getByTestId("variable-description").fill("Who the video greets");
    await page.getByTestId("variables-save").click();
    await page.locator('[data-testid="variables-save"]', { hasText: "Saved" }).waitFor();
    const stored = await env.db.admin.query("SELECT variables FROM video_production_pipelines WHERE id = $1", [P]);
    expect(stored.rows[0].variables).toEqual([{ name: "name", type: "text", description: "Who the video greets" }]);
    await screenshot(page, "batches-01-variables");

    // The script uses it: a known placeholder; an undeclared one is marked until it goes.
    await page.locator(node("script")).click({ position: { x: 120, y: 20 } });
    await page.getByTestId("node-panel").waitFor();
    const text = page.getByTestId("node-panel").getByTestId("asset-text-script");
    await text.fill("Hello {{name}}, meet {{friend}}");
    const chips = page.getByTestId("node-panel").getByTestId("placeholders-script");
    await chips.locator('[data-name="friend"][data-known="false"]').waitFor();
    expect(await chips.locator('[data-name="name"]').getAttribute("data-known")).toBe("true");
    expect(await chips.locator('[data-name="friend"]').textContent()).toBe("{{friend}} unknown");
    await screenshot(page, "batches-02-unknown-placeholder");
    await text.fill("Hello {{name}}");
    await chips.locator('[data-name="friend"]').waitFor({ state: "detached" });
    await expect.poll(async () => (await storedNode(env, P, "script")).asset.content, { timeout: 10_000 }).toBe("Hello {{name}}");
    expect(await chips.locator('[data-testid="placeholder-chip"]').count()).toBe(1);
    await screenshot(page, "batches-03-placeholder");

    // Deleting a variable still in use is refused, naming the node that uses it; the declarations stay as they were.
    expect(await page.getByTestId("variable-usage").textContent()).toBe("Used by Script");
    await page.getByTestId("variable-delete").click();
    await page.getByTestId("variables-save").click();
    await page.getByTestId("variables-error").waitFor();
    expect(await page.getByTestId("variables-problem-node").textContent()).toBe("Script");
    expect(await page.getByTestId("variables-error").textContent()).toContain("{{name}}");
    await screenshot(page, "batches-04-variable-in-use");
    await page.getByRole("button", { name: "Discard changes" }).click();
    await page.locator('[data-testid="variable-row"][data-name="name"]').waitFor();
    expect((await env.db.admin.query("SELECT variables FROM video_production_pipelines WHERE id = $1", [P])).rows[0].variables).toHaveLength(1);

    // The Batches page, from the header.
    await page.getByTestId("batches-link").click();
    await page.getByTestId("new-batch").waitFor();

    // A CSV with an unknown column and a row without a name: refused, every problem by row and column.
    const bad = join(env.scratch, "bad.csv");
    await writeFile(bad, "name,colour\nAda,red\n,blue\n");
    await page.getByTestId("batch-file-input").setInputFiles(bad);
    await page.getByTestId("batch-problems").waitFor();
    const problems = await page
      .locator('[data-testid="batch-problem"]')
      .evaluateAll((rows) => rows.map((r) => [Number(r.getAttribute("data-row")), r.getAttribute("data-column")]));
    expect(problems).toEqual(
      expect.arrayContaining([
        [1, "colour"],
        [2, "colour"],
        [2, "name"],
      ]),
    );
    expect(await page.locator('[data-testid="batch-problem"][data-row="2"][data-column="name"]').textContent()).toContain("no default");
    expect(await page.getByTestId("batch-start").isDisabled()).toBe(true);
    // The offending cells are marked in the preview.
    expect(await page.locator('[data-testid="batch-preview"] td.cell-problem').count()).toBe(3);
    await screenshot(page, "batches-05-csv-problems");

    // A good CSV of three rows: checked, priced, started.
    const good = join(env.scratch, "good.csv");
    await writeFile(good, 'name\nAda\nGrace\n"Linus, the third"\n');
    await page.getByTestId("batch-file-input").setInputFiles(good);
    await page.getByTestId("batch-estimate").waitFor();
    expect(await page.getByTestId("batch-parsed").textContent()).toContain("3 rows");
    expect(await page.getByTestId("batch-estimate").textContent()).toMatch(/Estimated .+ for 3 rows/);
    expect(await page.getByTestId("batch-estimate-split").textContent()).toMatch(/shared work .+ \+ .+ per row/);
    expect(await page.getByTestId("batch-problems").count()).toBe(0);
    await screenshot(page, "batches-06-estimate");
    await page.getByTestId("batch-start").click();

    // The live table: every row reaches completed, shown as it happens.
    const detail = page.getByTestId("batch-detail");
    await detail.waitFor();
    const batchId = (await detail.getAttribute("data-batch-id"))!;
    await page.locator('[data-testid="batch-live"]', { hasText: "Live" }).waitFor();
    await page.locator('[data-testid="batch-row"]').nth(2).waitFor();
    await page
      .locator('[data-testid="batch-row"][data-status="running"], [data-testid="batch-row"][data-status="completed"]')
      .first()
      .waitFor({ timeout: 60_000 });
    await screenshot(page, "batches-07-running");
    await expect.poll(() => page.locator('[data-testid="batch-row"][data-status="completed"]').count(), { timeout: 120_000, interval: 500 }).toBe(3);
    await page.locator('[data-testid="batch-status"]', { hasText: "completed" }).waitFor({ timeout: 20_000 });
    expect(await page.locator('[data-testid="batch-row-preview"]').count()).toBe(3);
    const values = await page.locator('[data-testid="batch-row"] .batch-value').allTextContents();
    expect(values).toEqual(["Ada", "Grace", "Linus, the third"]);
    await screenshot(page, "batches-08-completed");

    // The database agrees: three completed rows, each with its own pipeline whose script says its name.
    const rows = await env.db.admin.query("SELECT index, status, pipeline_id FROM video_production_batch_rows WHERE batch_id = $1 ORDER BY index", [batchId]);
    expect(rows.rows.map((r) => r.status)).toEqual(["completed", "completed", "completed"]);

    // A row's result, fetched as its link gives it (the output cookie), and the zip of all three.
    const href = await page.locator('[data-testid="batch-row"][data-index="2"] [data-testid="batch-row-download"]').getAttribute("href");
    const fetched = await page.evaluate(async (url) => {
      const response = await fetch(url!, { credentials: "include" });
      return { status: response.status, type: response.headers.get("content-type"), size: (await response.arrayBuffer()).byteLength };
    }, href);
    expect(fetched.status).toBe(200);
    expect(fetched.type).toMatch(/^audio\//);
    expect(fetched.size).toBeGreaterThan(1000);
    const download = page.waitForEvent("download");
    await page.getByTestId("batch-zip").click();
    const zip = await readFile((await (await download).path())!);
    expect(zip.subarray(0, 2).toString()).toBe("PK");
    await screenshot(page, "batches-09-downloaded");

    // Filter: the completed rows only, then none failed.
    await page.getByTestId("batch-filter-failed").click();
    expect(await page.locator('[data-testid="batch-row"]').count()).toBe(0);
    await page.getByTestId("batch-filter-completed").click();
    expect(await page.locator('[data-testid="batch-row"]').count()).toBe(3);
    // Back in the editor: a video asset bound to a video variable (each row would give its own clip).
    await env.api.ok("PUT", `/pipelines/${P}/variables`, {
      variables: [
        { name: "name", type: "text", description: "Who the video greets" },
        { name: "clip", type: "video" },
      ],
    });
    await env.api.ok("POST", `/pipelines/${P}/nodes`, { id: "clip", title: "Clip", type: "asset", asset: { type: "video" }, position: { x: 0, y: 400 } });
    await page.getByTestId("back-to-editor").click();
    await page.locator('[data-testid="live-status"][data-live="live"]').waitFor();
    await page.locator(node("clip")).click({ position: { x: 120, y: 20 } });
    const binding = page.getByTestId("node-panel").getByTestId("asset-variable");
    expect(await binding.locator("option").allTextContents()).toEqual(["None: this file in every run", "clip"]);
    await binding.selectOption("clip");
    await expect.poll(async () => (await storedNode(env, P, "clip")).asset.variable, { timeout: 10_000 }).toBe("clip");
    await screenshot(page, "batches-10-bound-asset");

    // Refusals the test provokes: the variable still in use, the bad CSV's dry run, and the text with the undeclared
    // placeholder if it was saved before it was corrected.
    expectNoErrors(/status of 422 .*\/pipelines\/[^/]+\/(?:variables|batches|nodes\/script)\)$/);
  }, 240_000);
});
