/**
 * A producer's first hour, walked in Chromium against the real services with the mouse and keyboard only: from an
 * empty pipelines list to an eight-node launch video (a typed script, a local voiceover and talking head of it, a
 * code animation, a local AI animation, a merge of the two animations, the merge mixed with the voiceover, and a
 * picture-in-picture of the mix with the talking head over it), laid out and fitted. The walk must take under a
 * minute, every card must be readable at the zoom it ends on, and the database must hold what was built.
 */
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dragConnection, node, openPage, screenshot, startEditorStack, type EditorStack } from "./harness";

let env: EditorStack;

beforeAll(async () => {
  env = await startEditorStack();
}, 300_000);

afterAll(async () => {
  await env?.cleanup();
});

const WALK_LIMIT_MS = 60_000;
/** The smallest title text, in CSS pixels on screen, that reads without leaning in. */
const READABLE_PX = 11;
const SCRIPT = "Meet Relay: your launch video, built in an afternoon.";
const CODE = 'const relay = launch("today");';
const PROMPT = "A paper plane folds itself and flies over a city at dawn";

/** The canvas zoom, from the React Flow viewport's transform. */
const zoomOf = (page: Page) => page.locator(".react-flow__viewport").evaluate((el) => new DOMMatrixReadOnly(getComputedStyle(el).transform).a);

/** Waits until the viewport has stopped moving (an animated Fit view, a fit after a node was added). */
async function settled(page: Page) {
  let last = "";
  for (let i = 0; i < 40; i++) {
    const now = await page.locator(".react-flow__viewport").evaluate((el) => getComputedStyle(el).transform);
    if (now === last) return;
    last = now;
    await page.waitForTimeout(60);
  }
}

async function fitView(page: Page) {
  await page.getByTestId("fit-view").click();
  await page.waitForTimeout(220);
  await settled(page);
}

/**
 * A point on empty canvas where a card dropped there (its top-left corner at the point) would cover no other card,
 * the minimap or the zoom controls; the one nearest `near`.
 */
async function roomOnCanvas(page: Page, near: { x: number; y: number }): Promise<{ x: number; y: number }> {
  const spot = await page.evaluate(
    ({ near }) => {
      const pane = document.querySelector(".react-flow__pane")!.getBoundingClientRect();
      const zoom = new DOMMatrixReadOnly(getComputedStyle(document.querySelector(".react-flow__viewport")!).transform).a;
      const obstacles = Array.from(document.querySelectorAll(".react-flow__node, .react-flow__minimap, .react-flow__controls")).map((el) =>
        el.getBoundingClientRect(),
      );
      const [w, h, margin] = [264 * zoom, 230 * zoom, 12];
      let best: { x: number; y: number; d: number } | null = null;
      for (let x = pane.left + margin; x + w + margin <= pane.right; x += 16) {
        for (let y = pane.top + margin; y + h + margin <= pane.bottom; y += 16) {
          const free = obstacles.every((o) => x + w + margin <= o.left || o.right <= x - margin || y + h + margin <= o.top || o.bottom <= y - margin);
          const d = Math.hypot(x - near.x, y - near.y);
          if (free && (!best || d < best.d)) best = { x, y, d };
        }
      }
      return best;
    },
    { near },
  );
  if (!spot) throw new Error("no room left on the canvas for another card");
  return spot;
}

/** An element's box once the canvas has stopped moving (a node just added fits the view a few frames later). */
async function settledBox(page: Page, selector: string): Promise<{ x: number; y: number; width: number; height: number }> {
  let last = "";
  for (let tries = 0; tries < 50; tries++) {
    const box = await page.locator(selector).boundingBox();
    if (box && JSON.stringify(box) === last) return box;
    last = JSON.stringify(box);
    await page.waitForTimeout(100);
  }
  throw new Error(`${selector} kept moving for 5 s`);
}

/** Drags a connection out of a node's output and lets go on empty canvas, then picks a node type in the offered list. */
async function dropConnectionAndPick(page: Page, sourceId: string, type: string): Promise<void> {
  const handle = await settledBox(page, `${node(sourceId)} .react-flow__handle.source`);
  const from = { x: handle.x + handle.width / 2, y: handle.y + handle.height / 2 };
  const to = await roomOnCanvas(page, { x: from.x + 60, y: from.y });
  await page.mouse.move(from.x, from.y);
  await page.mouse.down();
  await page.mouse.move((from.x + to.x) / 2, (from.y + to.y) / 2, { steps: 5 });
  await page.mouse.move(to.x, to.y, { steps: 5 });
  await page.mouse.up();
  await page.getByTestId("node-search").waitFor();
  await page.getByTestId(`node-search-item-${type}`).click();
}

/** Opens a node's panel by clicking its title on the canvas. */
async function openPanel(page: Page, id: string) {
  await page.getByTestId(`node-title-${id}`).click();
  await page.locator(`[data-testid="node-panel"][aria-label$="settings"]`).waitFor();
  await page.locator(`.panel .mono[title="Node id"]`, { hasText: new RegExp(`^${id}$`) }).waitFor();
}

/** Renames the node open in the panel: select the title's text, type over it. */
async function typeTitle(page: Page, title: string) {
  await page.getByTestId("panel-title").click();
  await page.keyboard.press("Control+a");
  await page.keyboard.type(title);
}

async function connect(page: Page, source: string, target: string, slot: string) {
  await dragConnection(page, source, target, slot);
  await page.locator(`[data-testid="rf__edge-${source}->${target}.${slot}"]`).waitFor();
}

describe("a producer's first hour", () => {
  it("builds an eight-node launch video from the empty list with the mouse and keyboard in under a minute, every card readable at the end", async () => {
    const { page, expectNoErrors } = await openPage(env.browser);
    await page.goto(env.web.url);
    await page.getByTestId("empty-list").waitFor();

    // The clock runs from the first click on the list page.
    const started = performance.now();
    const laps: Array<[string, number]> = [];
    const lap = (what: string) => laps.push([what, Math.round(performance.now() - started)]);

    await page.getByTestId("new-pipeline-title").click();
    await page.keyboard.type("Relay launch video");
    await page.keyboard.press("Enter");
    await page.waitForURL(/\/pipelines\/[^/]+$/);
    const P = new URL(page.url()).pathname.split("/").pop()!;
    await page.getByTestId("canvas-empty").waitFor();
    await page.locator('[data-testid="live-status"][data-live="live"]').waitFor();
    lap("pipeline created");

    // The script: an asset from the palette, made a text asset in its panel, typed there.
    await page.getByTestId("palette-asset").click();
    await page.locator(node("asset-1")).waitFor();
    await openPanel(page, "asset-1");
    await typeTitle(page, "Script");
    await page.getByTestId("asset-type").selectOption("text");
    await page.locator('.panel [data-testid="asset-text-asset-1"]').click();
    await page.keyboard.type(SCRIPT);
    await page.keyboard.press("Escape");
    await page.getByTestId("node-panel").waitFor({ state: "detached" });
    await screenshot(page, "first-hour-01-script");
    lap("script");

    // A voiceover and a talking head of it: connections dragged out of the script and dropped on the canvas.
    await dropConnectionAndPick(page, "asset-1", "generate-voiceover");
    await page.locator(node("generate-voiceover-1")).waitFor();
    await dropConnectionAndPick(page, "asset-1", "talking-head");
    await page.locator(node("talking-head-1")).waitFor();
    for (const [id, title] of [
      ["generate-voiceover-1", "Voiceover"],
      ["talking-head-1", "Presenter"],
    ] as const) {
      await openPanel(page, id);
      await typeTitle(page, title);
      await page.getByTestId("field-provider").selectOption("local");
      await page.keyboard.press("Escape");
    }
    lap("voiceover and talking head");

    // A code animation from the palette, its code typed in the panel's code editor.
    await page.getByTestId("palette-render-code").click();
    await page.locator(node("render-code-1")).waitFor();
    await openPanel(page, "render-code-1");
    await typeTitle(page, "Code demo");
    await page.locator('[data-testid="code-editor"] .cm-content').click();
    await page.keyboard.type(CODE);
    await page.keyboard.press("Escape");

    // An AI animation found with Ctrl+K, local, with a prompt.
    await page.locator(".react-flow__pane").click({ position: { x: 10, y: 10 } });
    await page.keyboard.press("Control+k");
    await page.getByTestId("node-search-input").waitFor();
    await page.keyboard.type("animation prompt");
    await page.keyboard.press("Enter");
    await page.locator(node("generate-animation-1")).waitFor();
    await openPanel(page, "generate-animation-1");
    await typeTitle(page, "AI intro");
    await page.getByTestId("field-provider").selectOption("local");
    await page.getByTestId("field-prompt").click();
    await page.keyboard.type(PROMPT);
    await page.keyboard.press("Escape");
    await page.getByTestId("node-panel").waitFor({ state: "detached" });
    lap("code and AI animations");
    await screenshot(page, "first-hour-02-sources");

    // The merge of the two animations: from the palette, both connected by handle drags.
    await page.getByTestId("palette-merge-videos").click();
    await page.locator(node("merge-videos-1")).waitFor();
    await fitView(page);
    await connect(page, "render-code-1", "merge-videos-1", "segments");
    await connect(page, "generate-animation-1", "merge-videos-1", "segments");
    lap("merge");

    // The mix: a connection out of the merge dropped on the canvas, then the voiceover into its audio.
    await dropConnectionAndPick(page, "merge-videos-1", "mix-audio");
    await page.locator(node("mix-audio-1")).waitFor();
    await fitView(page);
    await connect(page, "generate-voiceover-1", "mix-audio-1", "audio");

    // The picture in picture: the mix as its background (dropped out of the mix), the talking head as the overlay.
    await dropConnectionAndPick(page, "mix-audio-1", "compose-video");
    await page.locator(node("compose-video-1")).waitFor();
    await fitView(page);
    await connect(page, "talking-head-1", "compose-video-1", "overlays");
    lap("mix and picture in picture");
    for (const [id, title] of [
      ["merge-videos-1", "Animations"],
      ["mix-audio-1", "Animations with voice"],
      ["compose-video-1", "Launch video"],
    ] as const) {
      await openPanel(page, id);
      await typeTitle(page, title);
      await page.keyboard.press("Escape");
    }
    await screenshot(page, "first-hour-03-connected");

    // Tidy up: Auto-layout, then Fit view.
    await page.getByTestId("auto-layout").click();
    await settled(page);
    await fitView(page);
    lap("laid out");
    const walkMs = performance.now() - started;
    await screenshot(page, "first-hour-04-final");
    console.log(`first hour walk: ${(walkMs / 1000).toFixed(1)} s (${laps.map(([w, ms]) => `${w} ${(ms / 1000).toFixed(1)} s`).join(", ")})`);

    // Readable where it ends: each title at least READABLE_PX on screen (its computed font size times the zoom), on top
    // (no card, minimap or control over it), inside its card and not cut off; the status too; no two cards overlapping.
    const zoom = await zoomOf(page);
    const cards = await page.locator(".react-flow__node").evaluateAll(
      (els, zoom) =>
        els.map((el) => {
          const box = el.getBoundingClientRect();
          const title = el.querySelector<HTMLElement>(".node-title")!;
          const text = document.createRange();
          text.selectNodeContents(title);
          const t = text.getBoundingClientRect();
          const top = document.elementFromPoint(t.left + Math.min(t.width, 40) / 2, t.top + Math.min(t.height, 20) / 2);
          const badge = el.querySelector<HTMLElement>(".node-actions .badge")!;
          const badgeScale = new DOMMatrixReadOnly(getComputedStyle(badge).transform).a;
          return {
            id: el.getAttribute("data-id")!,
            box: { x: box.x, y: box.y, width: box.width, height: box.height },
            title: title.textContent,
            px: Number.parseFloat(getComputedStyle(title).fontSize) * zoom,
            statusPx: Number.parseFloat(getComputedStyle(badge).fontSize) * badgeScale * zoom,
            visible: getComputedStyle(title).visibility === "visible",
            onTop: !!top && title.contains(top),
            inside: t.left >= box.left - 0.5 && t.right <= box.right + 0.5 && t.top >= box.top - 0.5 && t.bottom <= box.bottom + 0.5,
            cutOff: title.scrollWidth > title.clientWidth + 1 || title.scrollHeight > title.clientHeight + 1,
          };
        }),
      zoom,
    );
    console.log(
      `final zoom ${zoom.toFixed(3)}; on screen: ${cards.map((c) => `${c.title} ${c.px.toFixed(1)} px (status ${c.statusPx.toFixed(1)} px)`).join(", ")}`,
    );
    expect(cards).toHaveLength(8);
    for (const c of cards) {
      expect({
        id: c.id,
        px: c.px >= READABLE_PX,
        statusPx: c.statusPx >= READABLE_PX,
        visible: c.visible,
        onTop: c.onTop,
        inside: c.inside,
        cutOff: c.cutOff,
      }).toEqual({
        id: c.id,
        px: true,
        statusPx: true,
        visible: true,
        onTop: true,
        inside: true,
        cutOff: false,
      });
    }
    const overlapping = cards.flatMap((a, i) =>
      cards
        .slice(i + 1)
        .filter(({ box: b }) => a.box.x < b.x + b.width && b.x < a.box.x + a.box.width && a.box.y < b.y + b.height && b.y < a.box.y + a.box.height)
        .map((b) => `${a.id} and ${b.id}`),
    );
    expect(overlapping).toEqual([]);
    expect(walkMs).toBeLessThan(WALK_LIMIT_MS);

    // The database holds what was built: eight nodes, the connections as inputs, the configs and the script.
    await expect
      .poll(
        async () =>
          (await env.db.admin.query("select id, title, type, inputs, config, asset from video_production_nodes where pipeline_id = $1 order by id", [P])).rows,
        {
          timeout: 5000,
        },
      )
      .toEqual([
        { id: "asset-1", title: "Script", type: "asset", inputs: {}, config: {}, asset: { type: "text", content: SCRIPT } },
        {
          id: "compose-video-1",
          title: "Launch video",
          type: "compose-video",
          inputs: { background: ["mix-audio-1"], overlays: ["talking-head-1"] },
          config: {},
          asset: null,
        },
        { id: "generate-animation-1", title: "AI intro", type: "generate-animation", inputs: {}, config: { provider: "local", prompt: PROMPT }, asset: null },
        {
          id: "generate-voiceover-1",
          title: "Voiceover",
          type: "generate-voiceover",
          inputs: { script: ["asset-1"] },
          config: { provider: "local" },
          asset: null,
        },
        {
          id: "merge-videos-1",
          title: "Animations",
          type: "merge-videos",
          inputs: { segments: ["render-code-1", "generate-animation-1"] },
          config: {},
          asset: null,
        },
        {
          id: "mix-audio-1",
          title: "Animations with voice",
          type: "mix-audio",
          inputs: { video: ["merge-videos-1"], audio: ["generate-voiceover-1"] },
          config: {},
          asset: null,
        },
        { id: "render-code-1", title: "Code demo", type: "render-code", inputs: {}, config: { code: CODE }, asset: null },
        { id: "talking-head-1", title: "Presenter", type: "talking-head", inputs: { script: ["asset-1"] }, config: { provider: "local" }, asset: null },
      ]);
    // Auto-layout's positions were saved: each stored position is where the card is drawn, in canvas coordinates.
    const drawn = await page.locator(".react-flow").evaluate((flow) => {
      const origin = flow.getBoundingClientRect();
      const view = new DOMMatrixReadOnly(getComputedStyle(flow.querySelector(".react-flow__viewport")!).transform);
      return Array.from(flow.querySelectorAll(".react-flow__node")).map((el) => {
        const box = el.getBoundingClientRect();
        return { id: el.getAttribute("data-id")!, x: (box.x - origin.x - view.e) / view.a, y: (box.y - origin.y - view.f) / view.a };
      });
    });
    await expect
      .poll(async () => {
        const { rows } = await env.db.admin.query("select id, position from video_production_nodes where pipeline_id = $1", [P]);
        const stored = new Map(rows.map((r: { id: string; position: { x: number; y: number } }) => [r.id, r.position]));
        return drawn.filter((d) => Math.abs(stored.get(d.id)!.x - d.x) > 1.5 || Math.abs(stored.get(d.id)!.y - d.y) > 1.5).map((d) => d.id);
      })
      .toEqual([]);
    expectNoErrors();
  }, 240_000);
});
