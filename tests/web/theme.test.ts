/**
 * Light and dark themes in Chromium against the real services: the System / Light / Dark switch in the editor's
 * header and the pipelines list, remembered across a reload and applied before the page is drawn (the pre-paint
 * script passes the page's CSP), System following prefers-color-scheme, and the canvas, a node card, the side
 * panel and a dialog drawn in different colours in each theme with text at WCAG AA contrast (4.5:1) or better.
 */
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { node, openPage, screenshot, startEditorStack, type EditorStack } from "./harness";

let env: EditorStack;

beforeAll(async () => {
  env = await startEditorStack();
}, 300_000);

afterAll(async () => {
  await env?.cleanup();
});

type Rgba = [number, number, number, number];

/** A computed colour (rgb(), rgba() or color(srgb …)) as 0–255 channels and alpha. */
function parseColour(css: string): Rgba {
  const rgb = /^rgba?\(([\d.]+),\s*([\d.]+),\s*([\d.]+)(?:,\s*([\d.]+))?\)$/.exec(css);
  if (rgb) return [Number(rgb[1]), Number(rgb[2]), Number(rgb[3]), rgb[4] === undefined ? 1 : Number(rgb[4])];
  const srgb = /^color\(srgb ([\d.]+) ([\d.]+) ([\d.]+)(?: \/ ([\d.]+))?\)$/.exec(css);
  if (srgb) return [Number(srgb[1]) * 255, Number(srgb[2]) * 255, Number(srgb[3]) * 255, srgb[4] === undefined ? 1 : Number(srgb[4])];
  throw new Error(`not a colour: ${css}`);
}

/** WCAG 2 relative luminance. */
function luminance([r, g, b]: Rgba): number {
  const lin = (c: number) => {
    const s = c / 255;
    return s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
}

function contrast(a: Rgba, b: Rgba): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x) as [number, number];
  return (hi + 0.05) / (lo + 0.05);
}

/** What is measured: an element whose own background is opaque, and text drawn on it. */
const SURFACES = {
  canvas: { background: ".canvas .react-flow", text: [".canvas .react-flow"] },
  card: { background: `${node("voice")} .node-card`, text: [`${node("voice")} .node-title`, `${node("voice")} .node-type`] },
  panel: { background: '[data-testid="node-panel"]', text: ['[data-testid="node-panel"] .panel-type', '[data-testid="node-panel"] .muted'] },
  dialog: { background: '[data-testid="shortcut-sheet"]', text: ['[data-testid="shortcut-sheet"] h2', '[data-testid="shortcut-sheet"] dd'] },
} as const;

interface Measured {
  background: string;
  text: string[];
}

async function measure(page: Page): Promise<Record<keyof typeof SURFACES, Measured>> {
  const out = {} as Record<keyof typeof SURFACES, Measured>;
  for (const [name, { background, text }] of Object.entries(SURFACES) as [keyof typeof SURFACES, (typeof SURFACES)[keyof typeof SURFACES]][]) {
    out[name] = {
      background: await page
        .locator(background)
        .first()
        .evaluate((e) => getComputedStyle(e).backgroundColor),
      text: await Promise.all(
        text.map((s) =>
          page
            .locator(s)
            .first()
            .evaluate((e) => getComputedStyle(e).color),
        ),
      ),
    };
  }
  return out;
}

/** Every surface opaque, its text at 4.5:1 or better, and the theme's kind of background (dark or light). */
function expectReadable(measured: Record<string, Measured>, theme: "light" | "dark") {
  for (const [name, { background, text }] of Object.entries(measured)) {
    const bg = parseColour(background);
    expect(bg[3], `${name} background ${background}`).toBe(1);
    if (theme === "dark") expect(luminance(bg), `${name} background ${background}`).toBeLessThan(0.05);
    else expect(luminance(bg), `${name} background ${background}`).toBeGreaterThan(0.8);
    for (const colour of text) expect(contrast(parseColour(colour), bg), `${name}: ${colour} on ${background}`).toBeGreaterThanOrEqual(4.5);
  }
}

/** The voiceover's panel and the shortcut sheet open over the canvas. */
async function openSurfaces(page: Page) {
  await page.locator(node("voice")).click({ position: { x: 120, y: 20 } });
  await page.getByTestId("node-panel").waitFor();
  await page.keyboard.press("Shift+?");
  await page.getByTestId("shortcut-sheet").waitFor();
}

/** Closes the shortcut sheet by its backdrop (Escape would also deselect the node and close the panel). */
async function closeSheet(page: Page) {
  await page.locator(".modal-backdrop").click({ position: { x: 5, y: 5 } });
  await page.getByTestId("shortcut-sheet").waitFor({ state: "detached" });
}

const htmlTheme = (page: Page) => page.evaluate(() => document.documentElement.dataset.theme ?? null);
const flowIsDark = (page: Page) => page.locator(".canvas .react-flow").evaluate((e) => e.classList.contains("dark"));

describe("light and dark themes", () => {
  it("the switch changes the theme, the choice survives a reload without a light flash, and System follows the browser", async () => {
    const { pipeline } = await env.api.ok("POST", "/pipelines", { title: "Themes" });
    const p = `/pipelines/${pipeline.id}/nodes`;
    await env.api.ok("POST", p, { id: "script", title: "Script", type: "asset", asset: { type: "text", content: "Hello there." }, position: { x: 0, y: 80 } });
    await env.api.ok("POST", p, {
      id: "voice",
      title: "Voiceover",
      type: "generate-voiceover",
      inputs: { script: ["script"] },
      config: { provider: "local" },
      position: { x: 380, y: 60 },
    });

    const { page, expectNoErrors } = await openPage(env.browser);
    // What the page had before React ran: only the pre-paint script sets data-theme on a load.
    await page.addInitScript(() => {
      document.addEventListener("DOMContentLoaded", () => {
        (window as unknown as { __themeAtParse?: string | null }).__themeAtParse = document.documentElement.dataset.theme ?? null;
      });
    });
    await page.emulateMedia({ colorScheme: "light" });
    await page.goto(`${env.web.url}/pipelines/${pipeline.id}`);
    await page.locator('[data-testid="live-status"][data-live="live"]').waitFor();
    await page.getByTestId("fit-view").click();
    // The fit animates; a click during it can land beside the node.
    await page.waitForTimeout(300);

    // No choice yet: System, which follows the (light) browser.
    expect(await page.getByTestId("theme-switch").getAttribute("data-theme-choice")).toBe("system");
    expect(await page.getByTestId("theme-system").getAttribute("aria-checked")).toBe("true");
    expect(await htmlTheme(page)).toBeNull();
    await openSurfaces(page);
    const light = await measure(page);
    expectReadable(light, "light");
    // The light tile is the catalog's tint of the type's colour (compose-video: #fef9c3 on #ca8a04).
    expect(
      await page
        .getByTestId("palette-compose-video")
        .locator(".node-icon")
        .evaluate((e) => [getComputedStyle(e).backgroundColor, getComputedStyle(e).color]),
    ).toEqual(["rgb(254, 249, 195)", "rgb(202, 138, 4)"]);
    expect(await flowIsDark(page)).toBe(false);
    await screenshot(page, "theme-01-light");

    // Dark, from the header's switch: every surface and its text change colour, still readable.
    await closeSheet(page);
    await page.getByTestId("theme-dark").click();
    expect(await page.getByTestId("theme-dark").getAttribute("aria-checked")).toBe("true");
    expect(await htmlTheme(page)).toBe("dark");
    await screenshot(page, "theme-02-dark-editor");
    await page.keyboard.press("Shift+?");
    await page.getByTestId("shortcut-sheet").waitFor();
    const dark = await measure(page);
    expectReadable(dark, "dark");
    for (const name of Object.keys(SURFACES) as (keyof typeof SURFACES)[]) {
      expect(dark[name].background, `${name} background`).not.toBe(light[name].background);
      for (const [i, colour] of dark[name].text.entries()) expect(colour, `${name} text`).not.toBe(light[name].text[i]);
    }
    // React Flow's own parts follow: its dark class, the controls and the minimap.
    expect(await flowIsDark(page)).toBe(true);
    const controlsBg = await page
      .locator(".react-flow__controls-button")
      .first()
      .evaluate((e) => getComputedStyle(e).backgroundColor);
    expect(luminance(parseColour(controlsBg))).toBeLessThan(0.05);
    const minimapBg = await page.locator(".react-flow__minimap").evaluate((e) => getComputedStyle(e).backgroundColor);
    expect(luminance(parseColour(minimapBg))).toBeLessThan(0.05);
    // Node type icons: a dark tile of the type's colour, its glyph visible on it (3:1, the level for graphics).
    const iconColours = (p: Page) =>
      p
        .getByTestId("palette-compose-video")
        .locator(".node-icon")
        .evaluate((e) => [getComputedStyle(e).backgroundColor, getComputedStyle(e).color]);
    const [tile, glyph] = (await iconColours(page)).map(parseColour) as [Rgba, Rgba];
    expect(luminance(tile)).toBeLessThan(0.05);
    expect(contrast(glyph, tile)).toBeGreaterThanOrEqual(3);
    await screenshot(page, "theme-03-dark-dialog");

    // A reload keeps it, applied by the pre-paint script before the body is parsed.
    await page.reload();
    await page.locator('[data-testid="live-status"][data-live="live"]').waitFor();
    expect(await page.evaluate(() => (window as unknown as { __themeAtParse?: string | null }).__themeAtParse)).toBe("dark");
    expect(await page.getByTestId("theme-dark").getAttribute("aria-checked")).toBe("true");
    await page.getByTestId("fit-view").click();
    // The fit animates; a click during it can land beside the node.
    await page.waitForTimeout(300);
    await openSurfaces(page);
    expect(await measure(page)).toEqual(dark);
    expect(await flowIsDark(page)).toBe(true);

    // System with a dark browser is dark; with a light one, light again.
    await closeSheet(page);
    await page.getByTestId("theme-system").click();
    expect(await htmlTheme(page)).toBeNull();
    await page.emulateMedia({ colorScheme: "dark" });
    await page.keyboard.press("Shift+?");
    await page.getByTestId("shortcut-sheet").waitFor();
    expect(await measure(page)).toEqual(dark);
    expect(await flowIsDark(page)).toBe(true);
    await page.emulateMedia({ colorScheme: "light" });
    await expect.poll(() => flowIsDark(page)).toBe(false);
    expect(await measure(page)).toEqual(light);

    // The pipelines list has the switch too, and reads the same stored choice.
    await closeSheet(page);
    await page.getByTestId("theme-light").click();
    await page.goto(env.web.url);
    await page.getByTestId("pipeline-table").waitFor();
    expect(await page.getByTestId("theme-light").getAttribute("aria-checked")).toBe("true");
    expect(await htmlTheme(page)).toBe("light");
    await page.emulateMedia({ colorScheme: "dark" });
    const listLight = await page.locator("table.pipelines").evaluate((e) => getComputedStyle(e).backgroundColor);
    expect(luminance(parseColour(listLight))).toBeGreaterThan(0.8);
    await page.getByTestId("theme-dark").click();
    const table = page.locator("table.pipelines");
    const [tableBg, linkColour] = await Promise.all([
      table.evaluate((e) => getComputedStyle(e).backgroundColor),
      page
        .locator(".pipeline-link")
        .first()
        .evaluate((e) => getComputedStyle(e).color),
    ]);
    expect(luminance(parseColour(tableBg))).toBeLessThan(0.05);
    expect(contrast(parseColour(linkColour), parseColour(tableBg))).toBeGreaterThanOrEqual(4.5);
    await screenshot(page, "theme-04-list-dark");
    expectNoErrors();
  }, 180_000);
});
