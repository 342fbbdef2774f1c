/**
 * compose-video's placement preview in Chromium against the real services: the overlay drawn over a paused frame
 * of the background's output where packages/media would put it; dragging the box, its corner and the arrow keys
 * write the same overlay config the form writes (read back through the gateway), the form's numbers follow, a
 * number typed in the form moves the box, and Undo takes a drag back.
 */
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { overlayLayout, type OverlaySpec } from "@vp/media";
import { createCompletedClips } from "../e2e/helpers";
import { node, openPage, screenshot, startEditorStack, type EditorStack } from "./harness";

let env: EditorStack;

beforeAll(async () => {
  env = await startEditorStack();
}, 300_000);

afterAll(async () => {
  await env?.cleanup();
});

const FRAME = { width: 640, height: 360 };
const PRESENTER = { width: 320, height: 180 };

async function storedOverlays(pipelineId: string): Promise<OverlaySpec[] | undefined> {
  const { node } = await env.api.ok("GET", `/pipelines/${pipelineId}/nodes/pip-comp`);
  return node.config?.overlays;
}

/** The box's element against the frame's element, in the frame's pixels (what the config speaks of). */
async function drawnBox(page: Page) {
  const frame = (await page.getByTestId("placement-frame").boundingBox())!;
  const box = (await page.getByTestId("placement-box-0").boundingBox())!;
  const k = FRAME.width / frame.width;
  return {
    x: (box.x - frame.x) * k,
    y: (box.y - frame.y) * k,
    width: box.width * k,
    height: box.height * k,
    /** Frame pixels per CSS pixel: the tolerance of a drawn edge. */
    k,
    frame,
  };
}

/** The drawn box is where packages/media puts an overlay with this spec, to within one CSS pixel. */
async function expectDrawnAt(page: Page, spec: OverlaySpec) {
  const expected = overlayLayout(FRAME, PRESENTER, spec, 0);
  const drawn = await drawnBox(page);
  expect(Math.abs(drawn.x - expected.x), `x ${drawn.x} vs ${expected.x}`).toBeLessThanOrEqual(drawn.k);
  expect(Math.abs(drawn.y - expected.y), `y ${drawn.y} vs ${expected.y}`).toBeLessThanOrEqual(drawn.k);
  expect(Math.abs(drawn.width - expected.width), `width ${drawn.width} vs ${expected.width}`).toBeLessThanOrEqual(drawn.k);
  expect(Math.abs(drawn.height - expected.height), `height ${drawn.height} vs ${expected.height}`).toBeLessThanOrEqual(drawn.k);
  return { expected, drawn };
}

describe("compose-video's placement preview", () => {
  it("drags, resizes and nudges the overlay over a frame of the background; the stored config, the form and the box agree", async () => {
    const { pipeline } = await env.api.ok("POST", "/pipelines", { title: "Placement" });
    const P = pipeline.id;
    await createCompletedClips(env.api, P, [
      { id: "bg", durationSeconds: 4, ...FRAME },
      { id: "pip", durationSeconds: 4, ...PRESENTER },
    ]);
    await env.api.ok("PATCH", `/pipelines/${P}/nodes/bg`, { title: "Background", position: { x: 0, y: 0 } });
    await env.api.ok("PATCH", `/pipelines/${P}/nodes/pip`, { title: "Presenter", position: { x: 0, y: 330 } });
    await env.api.ok("POST", `/pipelines/${P}/nodes`, {
      id: "pip-comp",
      title: "Picture in picture",
      type: "compose-video",
      inputs: { background: ["bg"], overlays: ["pip"] },
      position: { x: 380, y: 120 },
    });

    const { page, expectNoErrors } = await openPage(env.browser);
    await page.goto(`${env.web.url}/pipelines/${P}`);
    await page.locator('[data-testid="live-status"][data-live="live"]').waitFor();
    await page.getByTestId("fit-view").click();
    // The fit animates; a click during it can land beside the node.
    await page.waitForTimeout(300);
    await page.locator(node("pip-comp")).click({ position: { x: 120, y: 20 } });
    await page.getByTestId("overlays-editor").waitFor();

    // The frame: the background's output, paused at a frame, at its size (16:9 here).
    const frame = page.getByTestId("placement-frame");
    expect(await frame.getAttribute("data-width")).toBe("640");
    expect(await frame.getAttribute("data-height")).toBe("360");
    const video = page.getByTestId("placement-video");
    await expect.poll(() => video.evaluate((v: HTMLVideoElement) => v.readyState >= 2 && v.currentTime > 0)).toBe(true);
    expect(await video.evaluate((v: HTMLVideoElement) => ({ paused: v.paused, w: v.videoWidth, h: v.videoHeight }))).toEqual({ paused: true, w: 640, h: 360 });
    const frameBox = (await frame.boundingBox())!;
    expect(Math.abs(frameBox.width / frameBox.height - 16 / 9)).toBeLessThan(0.02);

    // No overlay config yet: the default, bottom-right at a quarter of the width.
    await expectDrawnAt(page, {});

    // Drag the box up and left: a custom position, stored through the form's save, shown in its X and Y fields.
    const start = (await page.getByTestId("placement-box-0").boundingBox())!;
    const grab = { x: start.x + start.width / 2, y: start.y + start.height / 2 };
    await page.mouse.move(grab.x, grab.y);
    await page.mouse.down();
    await page.mouse.move(grab.x - 60, grab.y - 40, { steps: 8 });
    await page.mouse.move(grab.x - 120, grab.y - 70, { steps: 8 });
    await page.mouse.up();
    const before = overlayLayout(FRAME, PRESENTER, {}, 0);
    const k = FRAME.width / frameBox.width;
    const moved = { x: Math.round(before.x - 120 * k), y: Math.round(before.y - 70 * k) };
    await expect.poll(() => storedOverlays(P), { timeout: 10_000 }).toEqual([{ position: "custom", x: moved.x, y: moved.y }]);
    expect(await page.getByTestId("overlay-0-position").inputValue()).toBe("custom");
    expect(await page.getByTestId("overlay-0-x").inputValue()).toBe(String(moved.x));
    expect(await page.getByTestId("overlay-0-y").inputValue()).toBe(String(moved.y));
    await expectDrawnAt(page, { position: "custom", ...moved });

    // Resize from the bottom-right corner (a custom box keeps its top-left): 50 CSS pixels wider.
    const handle = (await page.getByTestId("placement-resize-0").boundingBox())!;
    const corner = { x: handle.x + handle.width / 2, y: handle.y + handle.height / 2 };
    await page.mouse.move(corner.x, corner.y);
    await page.mouse.down();
    await page.mouse.move(corner.x + 50, corner.y + 5, { steps: 10 });
    await page.mouse.up();
    const size = Math.round(((before.width + 50 * k) / FRAME.width) * 1000) / 1000;
    await expect.poll(() => storedOverlays(P), { timeout: 10_000 }).toEqual([{ position: "custom", x: moved.x, y: moved.y, size }]);
    expect(await page.getByTestId("overlay-0-size").inputValue()).toBe(String(size));
    const { expected: resized } = await expectDrawnAt(page, { position: "custom", ...moved, size });
    expect(resized.width).toBeGreaterThan(before.width);
    expect(resized.x).toBe(moved.x);
    await screenshot(page, "placement-01-dragged");

    // The keyboard: three steps right (a hundredth of the width each) and one down on the box; one grow on the corner.
    await page.getByTestId("placement-box-0").focus();
    for (const key of ["ArrowRight", "ArrowRight", "ArrowRight", "ArrowDown"]) await page.keyboard.press(key);
    const nudged = { x: moved.x + 3 * 6, y: moved.y + 6 };
    await expect.poll(() => storedOverlays(P), { timeout: 10_000 }).toEqual([{ position: "custom", ...nudged, size }]);
    await page.getByTestId("placement-resize-0").focus();
    await page.keyboard.press("ArrowUp");
    const grown = Math.round((size + 0.01) * 1000) / 1000;
    await expect.poll(() => storedOverlays(P), { timeout: 10_000 }).toEqual([{ position: "custom", ...nudged, size: grown }]);
    expect(await page.getByTestId("placement-resize-0").getAttribute("aria-valuenow")).toBe(
      String(Math.round(overlayLayout(FRAME, PRESENTER, { size: grown }, 0).innerWidth / 6.4)),
    );
    await expectDrawnAt(page, { position: "custom", ...nudged, size: grown });

    // The form moves the box: a preset typed there is drawn where ffmpeg would put it.
    await page.getByTestId("overlay-0-position").selectOption("top-left");
    await expectDrawnAt(page, { position: "top-left", ...nudged, size: grown });
    await page.locator('[data-testid="config-save-state"]', { hasText: "Saved" }).waitFor();
    await expect.poll(() => storedOverlays(P), { timeout: 10_000 }).toEqual([{ position: "top-left", ...nudged, size: grown }]);
    // A size the schema refuses is not saved, and the box keeps the last valid size.
    await page.getByTestId("overlay-0-size").fill("3");
    await page.getByTestId("field-error-overlays").waitFor();
    await expectDrawnAt(page, { position: "top-left", ...nudged });
    await page.getByTestId("overlay-0-size").fill(String(grown));
    await page.locator('[data-testid="config-save-state"]', { hasText: "Saved" }).waitFor();

    // Undo takes the preset back to the nudged custom position, like any form edit.
    await page.locator(".react-flow__pane").click({ position: { x: 20, y: 20 } });
    await page.getByTestId("undo").click();
    await expect.poll(() => storedOverlays(P), { timeout: 10_000 }).toEqual([{ position: "custom", ...nudged, size: grown }]);
    await page.locator(node("pip-comp")).click({ position: { x: 120, y: 20 } });
    await page.getByTestId("overlays-editor").waitFor();
    await expectDrawnAt(page, { position: "custom", ...nudged, size: grown });
    await screenshot(page, "placement-02-after-undo");
    expectNoErrors();
  }, 240_000);

  it("without a background output, a neutral frame of the background's configured size", async () => {
    const { pipeline } = await env.api.ok("POST", "/pipelines", { title: "Placement, nothing run yet" });
    const P = pipeline.id;
    const code = { language: "javascript", code: "const a = 1;", width: 1920, height: 1080 };
    await env.api.ok("POST", `/pipelines/${P}/nodes`, { id: "intro", title: "Intro", type: "render-code", config: code, position: { x: 0, y: 0 } });
    await env.api.ok("POST", `/pipelines/${P}/nodes`, { id: "face", title: "Face", type: "asset", asset: { type: "video" }, position: { x: 0, y: 330 } });
    await env.api.ok("POST", `/pipelines/${P}/nodes`, {
      id: "pip-comp",
      title: "Picture in picture",
      type: "compose-video",
      inputs: { background: ["intro"], overlays: ["face"] },
      config: { overlays: [{ position: "center", size: 0.5 }] },
      position: { x: 380, y: 120 },
    });
    const { page, expectNoErrors } = await openPage(env.browser);
    await page.goto(`${env.web.url}/pipelines/${P}`);
    await page.locator('[data-testid="live-status"][data-live="live"]').waitFor();
    await page.getByTestId("fit-view").click();
    // The fit animates; a click during it can land beside the node.
    await page.waitForTimeout(300);
    await page.locator(node("pip-comp")).click({ position: { x: 120, y: 20 } });
    await page.getByTestId("overlays-editor").waitFor();
    const frame = page.getByTestId("placement-frame");
    expect(await frame.getAttribute("data-width")).toBe("1920");
    expect(await frame.getAttribute("data-height")).toBe("1080");
    expect(await page.getByTestId("placement-video").count()).toBe(0);
    expect(await frame.textContent()).toContain("the background has no output yet");
    // Centred at half the width, 16:9 until the overlay's picture is known.
    const box = page.getByTestId("placement-box-0");
    const expected = overlayLayout({ width: 1920, height: 1080 }, { width: 16, height: 9 }, { position: "center", size: 0.5 }, 0);
    expect(await box.evaluate((e) => [e.dataset.x, e.dataset.y, e.dataset.width, e.dataset.height].map(Number))).toEqual([
      expected.x,
      expected.y,
      expected.width,
      expected.height,
    ]);
    const [f, b] = [(await frame.boundingBox())!, (await box.boundingBox())!];
    expect(Math.abs(b.x + b.width / 2 - (f.x + f.width / 2))).toBeLessThanOrEqual(1);
    expect(Math.abs(b.width / f.width - 0.5)).toBeLessThan(0.01);
    await screenshot(page, "placement-03-no-output");
    expectNoErrors();
  }, 120_000);
});
