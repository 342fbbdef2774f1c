/**
 * The captions node in the editor, in Chromium against the real services: added from the palette, connected to a
 * clip and a local voiceover by dragging, styled in its panel, run, played, and its WebVTT file downloaded from
 * the panel's link.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCompletedClips } from "../e2e/helpers";
import { dragConnection, node, openPage, playFor, screenshot, startEditorStack, type EditorStack } from "./harness";

let env: EditorStack;

beforeAll(async () => {
  env = await startEditorStack();
}, 300_000);

afterAll(async () => {
  await env?.cleanup();
});

describe("the captions node in the editor", () => {
  it("is added from the palette, connected, styled, run and played; its VTT downloads from the panel", async () => {
    const { pipeline } = await env.api.ok("POST", "/pipelines", { title: "Captioned clip" });
    const p = pipeline.id as string;
    await createCompletedClips(env.api, p, [{ id: "clip", durationSeconds: 10, width: 640, height: 360 }]);
    await env.api.ok("PATCH", `/pipelines/${p}/nodes/clip`, { title: "Clip", position: { x: 0, y: 0 } });
    await env.api.ok("POST", `/pipelines/${p}/nodes`, {
      id: "voice",
      title: "Voiceover",
      type: "generate-voiceover",
      config: { provider: "local", script: "Captions in the editor. They follow the voice." },
      position: { x: 0, y: 330 },
    });
    await env.api.ok("POST", `/pipelines/${p}/nodes/voice/execute`);
    expect((await env.api.waitForStatus(p, "voice", ["completed", "failed"], 60_000)).status).toBe("completed");

    const { page, expectNoErrors } = await openPage(env.browser);
    await page.goto(`${env.web.url}/pipelines/${p}`);
    await page.locator('[data-testid="live-status"][data-live="live"]').waitFor();
    await page.getByTestId("palette-captions").click();
    await page.locator(node("captions-1")).waitFor();
    await page.getByTestId("fit-view").click();
    await page.waitForTimeout(300);
    await dragConnection(page, "clip", "captions-1", "video");
    await page.locator('[data-testid="rf__edge-clip->captions-1.video"]').waitFor();
    await dragConnection(page, "voice", "captions-1", "speech");
    await page.locator('[data-testid="rf__edge-voice->captions-1.speech"]').waitFor();

    await page.locator(node("captions-1")).click({ position: { x: 120, y: 20 } });
    await page.getByTestId("node-panel").waitFor();
    await page.getByTestId("field-position").selectOption("top");
    await page.locator('[data-testid="config-save-state"]', { hasText: "Saved" }).waitFor();
    await page.keyboard.press("Escape");
    await page.getByTestId("node-panel").waitFor({ state: "detached" });

    await page.getByTestId("execute-captions-1").click();
    await page.locator('[data-testid="status-captions-1"][data-status="completed"]').waitFor({ timeout: 90_000 });
    const played = await playFor(page, "output-video-captions-1");
    expect(played.error).toBeNull();
    expect({ width: played.width, height: played.height }).toEqual({ width: 640, height: 360 });

    await page.locator(node("captions-1")).click({ position: { x: 120, y: 20 } });
    const link = page.getByTestId("download-vtt");
    await link.waitFor();
    await screenshot(page, "30-captions-completed");
    const href = await link.getAttribute("href");
    const vtt = await page.evaluate(async (url) => {
      const response = await fetch(url!, { credentials: "include" });
      return { status: response.status, type: response.headers.get("content-type"), text: await response.text() };
    }, href);
    expect(vtt.status).toBe(200);
    expect(vtt.type).toMatch(/^text\/vtt/);
    expect(vtt.text).toMatch(/^WEBVTT/);
    expect(vtt.text).toContain("Captions in the editor.");
    expect(vtt.text).toContain("They follow the voice.");
    expectNoErrors();
  });
});
