/**
 * An uploaded video as the producer sees it, in Chromium against the real services: chosen through the asset's file
 * input, the card and the panel show the file's name (as text, on one line inside the card), its duration and size
 * and a paused frame of it read back from the gateway, with no notice that someone changed the node (the upload is
 * the page's own change); a replacement shows its own, and a path in a name never reaches the page or the database.
 */
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeClipBuffer } from "@vp/testkit";
import { formatBytes } from "../../web/lib/format";
import { node, openEditor, screenshot, startEditorStack, storedNode, type EditorStack } from "./harness";

let env: EditorStack;

beforeAll(async () => {
  env = await startEditorStack();
}, 300_000);

afterAll(async () => {
  await env?.cleanup();
});

/** What the page shows of a thumbnail: a decoded, paused frame, where in the clip, and the clip's size. */
const frameOf = (page: Page, testId: string) =>
  page.getByTestId(testId).evaluate(async (element) => {
    const v = element as HTMLVideoElement;
    const deadline = Date.now() + 10_000;
    while (v.readyState < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    return { ready: v.readyState >= 2, paused: v.paused, at: v.currentTime, width: v.videoWidth, height: v.videoHeight, error: v.error?.message ?? null };
  });

describe("an uploaded video", () => {
  it("shows its name, duration, size and a paused frame in the card and the panel; a replacement shows its own", async () => {
    const { pipeline } = await env.api.ok("POST", "/pipelines", { title: "Uploaded clips" });
    const P = pipeline.id as string;
    const { page, expectNoErrors } = await openEditor(env, P);
    await page.getByTestId("palette-asset").click();
    await page.locator(node("asset-1")).waitFor();

    // A name a page must not take for markup, longer than the card is wide.
    const name = "Launch teaser <img src=x onerror=alert(1)> final cut, take 12 (director's edit).mp4";
    const clip = await makeClipBuffer({ durationSeconds: 2, width: 320, height: 240, fps: 25, audio: false });
    await page.getByTestId("file-input-asset-1").setInputFiles({ name, mimeType: "video/mp4", buffer: clip });
    await page.getByTestId("asset-uploaded-asset-1").waitFor({ timeout: 60_000 });
    expect((await storedNode(env, P, "asset-1")).asset).toMatchObject({ type: "video", name, size: clip.length, contentType: "video/mp4" });

    // The card: the name as text on one line inside the card (the whole of it on hover), "2.0 s · size", a frame.
    const shownName = page.getByTestId("asset-name-asset-1");
    expect(await shownName.textContent()).toBe(name);
    expect(await shownName.getAttribute("title")).toBe(name);
    expect(await page.locator(`${node("asset-1")} img`).count()).toBe(0);
    const [nameBox, card] = [await shownName.boundingBox(), await page.locator(node("asset-1")).boundingBox()];
    expect(nameBox!.x).toBeGreaterThanOrEqual(card!.x);
    expect(nameBox!.x + nameBox!.width).toBeLessThanOrEqual(card!.x + card!.width);
    expect(nameBox!.height).toBeLessThan(24);
    await page.locator('[data-testid="asset-facts-asset-1"]', { hasText: /^2\.0 s · / }).waitFor();
    expect(await page.getByTestId("asset-facts-asset-1").textContent()).toBe(`2.0 s · ${formatBytes(clip.length)}`);
    const frame = await frameOf(page, "asset-thumb-asset-1");
    expect(frame).toMatchObject({ ready: true, paused: true, width: 320, height: 240, error: null });
    expect(frame.at).toBeCloseTo(0.5, 1);
    const thumb = await page.getByTestId("asset-thumb-asset-1").boundingBox();
    expect(thumb!.height).toBeGreaterThan(40);
    // The upload is this page's own change: no notice that someone changed the node.
    expect(await page.getByTestId("toast").allTextContents()).toEqual([]);
    await screenshot(page, "uploaded-asset-01-card");

    // The panel shows the same, larger.
    await page.getByTestId("node-title-asset-1").click();
    await page.getByTestId("node-panel").waitFor();
    expect(await page.getByTestId("panel-asset-name-asset-1").textContent()).toBe(name);
    await page.locator('[data-testid="panel-asset-facts-asset-1"]', { hasText: /^2\.0 s · / }).waitFor();
    expect(await frameOf(page, "panel-asset-thumb-asset-1")).toMatchObject({ ready: true, paused: true, width: 320, height: 240 });
    expect((await page.getByTestId("panel-asset-thumb-asset-1").boundingBox())!.width).toBeGreaterThan(thumb!.width);
    await screenshot(page, "uploaded-asset-02-panel");

    // Replaced with a shorter clip whose name carries a Windows path: only its name, made safe, is kept and shown.
    const second = await makeClipBuffer({ durationSeconds: 1, width: 160, height: 120, fps: 25, audio: false });
    await page.getByTestId("file-input-asset-1").first().setInputFiles({ name: "C:\\clips\\second take.mp4", mimeType: "video/mp4", buffer: second });
    await page.locator('[data-testid="asset-name-asset-1"]', { hasText: "second take.mp4" }).waitFor({ timeout: 60_000 });
    const replaced = (await storedNode(env, P, "asset-1")).asset;
    expect(replaced).toMatchObject({ name: "C:_clips_second take.mp4", size: second.length });
    expect(await page.getByTestId("asset-name-asset-1").textContent()).toBe("C:_clips_second take.mp4");
    await page.locator('[data-testid="asset-facts-asset-1"]', { hasText: /^1\.0 s · / }).waitFor();
    expect(await frameOf(page, "asset-thumb-asset-1")).toMatchObject({ ready: true, width: 160, height: 120 });
    await screenshot(page, "uploaded-asset-03-replaced");
    expectNoErrors();
  }, 240_000);
});
