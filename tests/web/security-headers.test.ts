/**
 * The editor's security headers in Chromium: a Content-Security-Policy with a fresh script nonce per page that
 * admits the gateway the editor uses (REST, SSE, output media) and nothing else, no framing, no sniffing, no
 * referrer; and the editor working under it (sign-in, live events, a playing output, text output) with no
 * policy violation.
 */
import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "@vp/testkit";
import { startWeb } from "../../scripts/web";
import { createCompletedClips } from "../e2e/helpers";
import { openPage, playFor, startEditorStack, type EditorStack } from "./harness";

let env: EditorStack;

beforeAll(async () => {
  env = await startEditorStack();
}, 300_000);

afterAll(async () => {
  await env?.cleanup();
});

const directive = (csp: string, name: string) =>
  csp
    .split(";")
    .map((d) => d.trim())
    .find((d) => d.startsWith(`${name} `)) ?? "";

describe("the editor's security headers", () => {
  it("pages carry a CSP with a fresh nonce that admits the gateway, and refuse framing, sniffing and referrers", async () => {
    const gateway = new URL(env.stack.baseUrl).origin;
    const nonces: string[] = [];
    for (const path of ["/", "/pipelines/does-not-exist"]) {
      const response = await fetch(`${env.web.url}${path}`);
      const csp = response.headers.get("content-security-policy") ?? "";
      expect(directive(csp, "connect-src").split(" ")).toEqual(["connect-src", "'self'", gateway]);
      expect(directive(csp, "media-src").split(" ")).toEqual(["media-src", "'self'", "blob:", gateway]);
      expect(directive(csp, "img-src").split(" ")).toEqual(["img-src", "'self'", "data:", "blob:", gateway]);
      expect(directive(csp, "frame-ancestors")).toBe("frame-ancestors 'none'");
      expect(directive(csp, "object-src")).toBe("object-src 'none'");
      const nonce = /'nonce-([^']+)'/.exec(directive(csp, "script-src"))?.[1];
      expect(nonce).toBeTruthy();
      expect(directive(csp, "script-src")).not.toContain("'unsafe-inline'");
      expect(directive(csp, "script-src")).not.toContain("'unsafe-eval'");
      nonces.push(nonce!);
      // Next puts the nonce on its own scripts, inline ones included.
      const html = await response.text();
      const scripts = [...html.matchAll(/<script\b[^>]*>/g)].map((m) => m[0]);
      expect(scripts.length).toBeGreaterThan(0);
      for (const tag of scripts) expect(tag, tag).toContain(`nonce="${nonce}"`);
      expect(response.headers.get("x-frame-options")).toBe("DENY");
      expect(response.headers.get("x-content-type-options")).toBe("nosniff");
      expect(response.headers.get("referrer-policy")).toBe("no-referrer");
    }
    expect(new Set(nonces).size).toBe(nonces.length);
    const asset = await fetch(`${env.web.url}/icon.svg`);
    expect(asset.headers.get("x-content-type-options")).toBe("nosniff");
  });

  it("works under its CSP: signs in, goes live, plays an output video and shows a text output, with no violation", async () => {
    const { pipeline } = await env.api.ok("POST", "/pipelines", { title: "under CSP" });
    await createCompletedClips(env.api, pipeline.id, [{ id: "clip", durationSeconds: 1, width: 160, height: 120 }]);
    await env.api.ok("POST", `/pipelines/${pipeline.id}/nodes`, { id: "note", title: "note", type: "asset", asset: { type: "text", content: "plain words" } });
    await env.api.ok("POST", `/pipelines/${pipeline.id}/nodes/note/execute`);
    expect((await env.api.waitForStatus(pipeline.id, "note", ["completed", "failed"])).status).toBe("completed");

    const { page, expectNoErrors } = await openPage(env.browser);
    await page.addInitScript(() => {
      const w = window as unknown as { __csp: string[] };
      w.__csp = [];
      document.addEventListener("securitypolicyviolation", (e) => w.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
    });
    await page.goto(`${env.web.url}/pipelines/${pipeline.id}`);
    await page.locator('[data-testid="live-status"][data-live="live"]').waitFor();
    const played = await playFor(page, "output-video-clip", 600);
    expect(played.error).toBeNull();
    expect(played.now).toBeGreaterThan(played.start);
    await expect.poll(() => page.getByTestId("output-text-note").textContent()).toContain("plain words");
    expect(await page.evaluate(() => (window as unknown as { __csp: string[] }).__csp)).toEqual([]);
    expectNoErrors();
  });

  it("another page cannot frame the editor", async () => {
    const { page } = await openPage(env.browser);
    await page.setContent(`<iframe id="f" src="${env.web.url}/" width="800" height="600"></iframe>`);
    await expect
      .poll(
        () =>
          page
            .frames()
            .find((f) => f !== page.mainFrame())
            ?.url() ?? "",
        { timeout: 15_000 },
      )
      .toMatch(/^chrome-error:/);
  });
});

/** Local addresses (hex, as the kernel lists them) of the TCP sockets listening on `port`. */
async function listeningOn(port: number): Promise<string[]> {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  const out: string[] = [];
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    const lines = (await readFile(file, "utf8").catch(() => "")).split("\n").slice(1);
    for (const line of lines) {
      const [, local, , state] = line.trim().split(/\s+/);
      if (state === "0A" && local?.endsWith(`:${hexPort}`)) out.push(local.slice(0, -5));
    }
  }
  return out;
}

describe("the editor under npm start", () => {
  it("listens on loopback only unless HOST says otherwise", async () => {
    const port = await freePort();
    const saved = process.env.HOST;
    delete process.env.HOST;
    const web = await startWeb({ port, gatewayUrl: "http://localhost:3061" });
    try {
      expect(await listeningOn(port)).toEqual(["0100007F"]);
    } finally {
      await web.stop();
      if (saved !== undefined) process.env.HOST = saved;
    }
  });
});
