/**
 * Browser tests of the editor: the real services (startStack) on a test database and bus namespace, the
 * real Next app (`next build` once, cached by source hash, then `next start` on a free port) and Debian's
 * Chromium driven by playwright-core. Nothing of our own is mocked.
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser, type ConsoleMessage, type Page } from "playwright-core";
import { expect } from "vitest";
import { createTestBus, createTestDatabase, freePort, startStack, type Stack, type TestBus, type TestDatabase } from "@vp/testkit";
import { ensureWebBuild, ROOT, startWeb, type WebProcess } from "../../scripts/web";
import { client, type Client } from "../e2e/helpers";

export const SCREENSHOT_DIR = join(ROOT, ".artifacts/screenshots");

/** The flags of the machine page for Debian's chromium in a container (no sandbox, no GPU, no network noise). */
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--autoplay-policy=no-user-gesture-required",
];

export function launchChromium(): Promise<Browser> {
  // playwright gives every launch a fresh temporary profile (--user-data-dir).
  return chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium", args: CHROMIUM_ARGS, headless: true });
}

export interface EditorStack {
  db: TestDatabase;
  bus: TestBus;
  stack: Stack;
  web: WebProcess;
  browser: Browser;
  api: Client;
  scratch: string;
  /** Milliseconds spent building the editor (0 when the cached build was current). */
  buildMs: number;
  cleanup(): Promise<void>;
}

export interface EditorStackOptions {
  jobAckWaitMs?: number;
  /** More environment for the services (S3 storage and delivery settings, say). */
  env?: Record<string, string>;
  /** More environment for the editor (MEDIA_ORIGINS, say). */
  webEnv?: Record<string, string>;
}

export async function startEditorStack(options: EditorStackOptions = {}): Promise<EditorStack> {
  const scratch = await mkdtemp(join(tmpdir(), "vp-web-"));
  const [build, webPort, db, bus] = await Promise.all([
    ensureWebBuild(),
    freePort(),
    createTestDatabase(),
    createTestBus(options.jobAckWaitMs ? { jobAckWaitMs: options.jobAckWaitMs } : {}),
  ]);
  const webOrigin = `http://127.0.0.1:${webPort}`;
  const stack = await startStack({
    databaseAdminUrl: db.adminUrl,
    namespace: bus.topology.namespace,
    storageRoot: join(scratch, "storage"),
    workRoot: join(scratch, "work"),
    // The editor signs in through the dev login, as with `npm start`.
    env: {
      CORS_ORIGINS: webOrigin,
      AUTH_DEV_LOGIN: "1",
      ...(options.jobAckWaitMs ? { JOB_ACK_WAIT_MS: String(options.jobAckWaitMs) } : {}),
      ...options.env,
    },
  });
  const [webStart, browserStart] = await Promise.allSettled([
    startWeb({ port: webPort, gatewayUrl: stack.baseUrl, hostname: "127.0.0.1", env: options.webEnv }),
    launchChromium(),
  ]);
  if (webStart.status === "rejected" || browserStart.status === "rejected") {
    // Nobody gets a cleanup() for a stack that failed to start: stop what did start, so no service outlives the file.
    if (browserStart.status === "fulfilled") await browserStart.value.close().catch(() => {});
    if (webStart.status === "fulfilled") await webStart.value.stop().catch(() => {});
    await stack.stop();
    await bus.cleanup();
    await db.drop();
    await rm(scratch, { recursive: true, force: true });
    throw webStart.status === "rejected" ? webStart.reason : (browserStart as PromiseRejectedResult).reason;
  }
  const [web, browser] = [webStart.value, browserStart.value];
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  return {
    db,
    bus,
    stack,
    web,
    browser,
    api: client(stack.baseUrl),
    scratch,
    buildMs: build.built ? build.ms : 0,
    async cleanup() {
      await browser.close().catch(() => {});
      await web.stop();
      await stack.stop();
      await bus.cleanup();
      await db.drop();
      await rm(scratch, { recursive: true, force: true });
    },
  };
}

export interface WatchedPage {
  page: Page;
  /** Console errors and uncaught page errors, as text. */
  errors: string[];
  /** Fails the test if the page logged an error (optionally ignoring lines an outage is expected to cause). */
  expectNoErrors(allowed?: RegExp): void;
}

/** A 1280x800 page that records console errors and uncaught exceptions. */
export async function openPage(browser: Browser): Promise<WatchedPage> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("console", (message: ConsoleMessage) => {
    if (message.type() === "error") errors.push(`console.error: ${message.text()} (${message.location().url})`);
  });
  page.on("pageerror", (error) => errors.push(`uncaught: ${error.message}`));
  page.setDefaultTimeout(20_000);
  return {
    page,
    errors,
    expectNoErrors(allowed?: RegExp) {
      if (process.env.VP_TEST_VERBOSE) console.log("page errors:", errors);
      expect(errors.filter((e) => !allowed || !allowed.test(e))).toEqual([]);
    },
  };
}

export async function screenshot(page: Page, name: string): Promise<string> {
  const path = join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path });
  return path;
}

/** The centre of an element, in page coordinates. */
export async function centre(page: Page, selector: string): Promise<{ x: number; y: number }> {
  const box = await page.locator(selector).boundingBox();
  if (!box) throw new Error(`${selector} is not visible`);
  return { x: box.x + box.width / 2, y: box.y + box.height / 2 };
}

/** Drags a connection from one node's output handle to an input slot's handle, with real mouse events. */
export async function dragConnection(page: Page, sourceId: string, targetId: string, slot: string, { release = true } = {}) {
  const from = await centre(page, `.react-flow__node[data-id="${sourceId}"] .react-flow__handle.source`);
  const to = await centre(page, `.react-flow__node[data-id="${targetId}"] .react-flow__handle.target[data-handleid="${slot}"]`);
  await page.mouse.move(from.x, from.y);
  await page.mouse.down();
  await page.mouse.move((from.x + to.x) / 2, (from.y + to.y) / 2, { steps: 6 });
  await page.mouse.move(to.x, to.y, { steps: 6 });
  if (release) await page.mouse.up();
}

/**
 * Records every value a node's status badge shows, from inside the page (a MutationObserver), so a status
 * that is on screen only briefly (queued) is still seen. Also notes whether a progress bar was visible
 * while the node was in progress.
 */
export async function recordStatuses(page: Page, nodeId: string): Promise<void> {
  await page.evaluate((id) => {
    const w = window as unknown as { __vpStatuses?: Record<string, string[]>; __vpProgressSeen?: Record<string, boolean> };
    w.__vpStatuses ??= {};
    w.__vpProgressSeen ??= {};
    const seen = (w.__vpStatuses[id] = [] as string[]);
    const check = () => {
      const badge = document.querySelector(`[data-testid="status-${id}"]`);
      const status = badge?.getAttribute("data-status");
      if (status && seen[seen.length - 1] !== status) seen.push(status);
      if (status === "in_progress" && document.querySelector(`[data-testid="progress-${id}"]`)) w.__vpProgressSeen![id] = true;
    };
    check();
    new MutationObserver(check).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ["data-status"] });
  }, nodeId);
}

export async function recordedStatuses(page: Page, nodeId: string): Promise<{ statuses: string[]; progressSeen: boolean }> {
  return page.evaluate((id) => {
    const w = window as unknown as { __vpStatuses?: Record<string, string[]>; __vpProgressSeen?: Record<string, boolean> };
    return { statuses: w.__vpStatuses?.[id] ?? [], progressSeen: !!w.__vpProgressSeen?.[id] };
  }, nodeId);
}

export const node = (id: string) => `.react-flow__node[data-id="${id}"]`;

/** Records, inside the page, every value a node's progress bar shows (aria-valuenow). */
export async function recordProgress(page: Page, nodeId: string): Promise<void> {
  await page.evaluate((id) => {
    const w = window as unknown as { __vpProgress?: Record<string, number[]> };
    w.__vpProgress ??= {};
    const seen = (w.__vpProgress[id] = [] as number[]);
    const check = () => {
      const bar = document.querySelector(`[data-testid="progress-${id}"]`);
      const value = bar ? Number(bar.getAttribute("aria-valuenow")) : undefined;
      if (value !== undefined && seen[seen.length - 1] !== value) seen.push(value);
    };
    check();
    new MutationObserver(check).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ["aria-valuenow"] });
  }, nodeId);
}

export const recordedProgress = (page: Page, nodeId: string) =>
  page.evaluate((id) => (window as unknown as { __vpProgress?: Record<string, number[]> }).__vpProgress?.[id] ?? [], nodeId);

/** Plays a video element muted for a moment; currentTime must advance. */
export async function playFor(page: Page, testId: string, ms = 1000) {
  return page.getByTestId(testId).evaluate(async (element, wait) => {
    const v = element as HTMLVideoElement;
    v.muted = true;
    await v.play();
    const start = v.currentTime;
    await new Promise((r) => setTimeout(r, wait));
    return { start, now: v.currentTime, duration: v.duration, width: v.videoWidth, height: v.videoHeight, error: v.error?.message ?? null };
  }, ms);
}

/** A node's row as stored (every column), or undefined. */
export async function storedNode(env: Pick<EditorStack, "db">, pipelineId: string, nodeId: string) {
  const { rows } = await env.db.admin.query("select * from video_production_nodes where pipeline_id = $1 and id = $2", [pipelineId, nodeId]);
  return rows[0];
}

/** A new page on the pipeline's editor: live, and fitted to the graph (the fit's animation over). */
export async function openEditor(env: Pick<EditorStack, "browser" | "web">, pipelineId: string): Promise<WatchedPage> {
  const watched = await openPage(env.browser);
  await watched.page.goto(`${env.web.url}/pipelines/${pipelineId}`);
  await watched.page.locator('[data-testid="live-status"][data-live="live"]').waitFor();
  await watched.page.getByTestId("fit-view").click();
  await watched.page.waitForTimeout(300);
  return watched;
}
