/**
 * Signing in to a deployed editor through OpenID Connect, in Chromium: a real provider (oidc-provider, with its own
 * login and consent pages), the editor's server doing the authorization code flow with PKCE, and the real gateway
 * verifying the provider's access tokens through its JWKS (no dev login, no shared secret for bearer tokens). An
 * editor signs in, works, has the short-lived token renewed and signs out at the provider; a viewer gets read-only
 * pages with the reason; a user without a role gets a page saying so; sign-in never returns to another site.
 */
import { randomBytes } from "node:crypto";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, insertNodeFixture } from "@vp/testkit";
import { client } from "../e2e/helpers";
import { openPage, screenshot, startEditorStack, type EditorStack } from "./harness";
import { startIdentityProvider, type IdentityProvider } from "./identity-provider";

/** Short, so the test sees it expire and renewed. */
const ACCESS_TOKEN_TTL_S = 15;
const USERS = {
  ed: { name: "Ed Editor", roles: ["editor"] },
  vera: { name: "Vera Viewer", roles: ["viewer"] },
  nora: { name: "Nora Nobody", roles: [] },
};

let env: EditorStack;
let idp: IdentityProvider;
let issuer: string;

beforeAll(async () => {
  const idpPort = await freePort();
  issuer = `http://127.0.0.1:${idpPort}`;
  env = await startEditorStack({
    // The gateway as deployed: bearer tokens from the provider's JWKS, its audience, no dev login.
    env: { AUTH_DEV_LOGIN: "0", AUTH_JWKS_URL: `${issuer}/jwks`, AUTH_ISSUER: issuer, AUTH_AUDIENCE: "vp-api", AUTH_ROLES_CLAIM: "roles" },
    webEnv: {
      OIDC_ISSUER: issuer,
      OIDC_CLIENT_ID: "vp-editor",
      OIDC_CLIENT_SECRET: "editor-client-secret-for-the-sign-in-test",
      OIDC_COOKIE_SECRET: randomBytes(32).toString("hex"),
    },
  });
  idp = await startIdentityProvider({ port: idpPort, editorUrl: env.web.url, users: USERS, accessTokenTtlSeconds: ACCESS_TOKEN_TTL_S });
}, 300_000);

afterAll(async () => {
  await env?.cleanup();
  await idp?.stop();
});

/** The payload of a JWT (the tests read what the provider issued; the gateway is what verifies it). */
const claimsOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split(".")[1]!, "base64url").toString("utf8")) as Record<string, unknown>;

/** The provider's own pages: its login form (any password), then its consent page. */
async function signInAtProvider(page: Page, login: string, shot?: string) {
  await page.waitForURL((url) => url.origin === issuer);
  await page.locator('input[name="login"]').waitFor();
  if (shot) await screenshot(page, shot);
  await page.locator('input[name="login"]').fill(login);
  await page.locator('input[name="password"]').fill("any password");
  await page.locator('button[type="submit"]').click();
  // Then its consent page, the first time this user signs in to the editor, and back to the editor.
  const consent = page.locator('button[type="submit"]', { hasText: /continue/i });
  const deadline = Date.now() + 15_000;
  while (!page.url().startsWith(env.web.url)) {
    if (Date.now() > deadline) throw new Error(`Still at the provider after signing in: ${page.url()}`);
    if (await consent.isVisible().catch(() => false)) await consent.click();
    else await page.waitForTimeout(100);
  }
}

/** The access token the editor's server hands this browser (as the editor's pages get it). */
async function currentToken(page: Page): Promise<{ status: number; body: Record<string, string> }> {
  return page.evaluate(async () => {
    const response = await fetch("/auth/token", { cache: "no-store" });
    return { status: response.status, body: await response.json() };
  });
}

/** The open pipeline's title; a page that never shows one fails with what it shows instead. */
async function pipelineTitle(page: Page): Promise<string | null> {
  try {
    await page.getByTestId("pipeline-title").waitFor();
  } catch (error) {
    throw new Error(`No pipeline title at ${page.url()}; the page shows: ${(await page.locator("body").innerText()).slice(0, 1500)}`, { cause: error });
  }
  return page.getByTestId("pipeline-title").textContent();
}

/** The editor's cookies on every path (the sign-in cookies live under /auth). */
async function editorCookies(page: Page) {
  const host = new URL(env.web.url).hostname;
  return (await page.context().cookies()).filter((c) => c.domain === host);
}

/**
 * Console lines that are not the editor's errors: the browser's note on the 401 with which GET /auth/token says
 * nobody is signed in (the page then goes to the provider), and the provider's own pages asking for a web font this
 * machine cannot reach and for a favicon it does not have.
 */
const expectedConsole = (...more: string[]) =>
  new RegExp(
    [
      String.raw`status of 401 \(Unauthorized\) \(http://127\.0\.0\.1:\d+/auth/token\)`,
      String.raw`fonts\.googleapis\.com`,
      `${issuer.replace(/\./g, "\\.")}/favicon\\.ico`,
      ...more,
    ].join("|"),
  );

describe("signing in to the editor through OpenID Connect", () => {
  let pipelineId: string;

  it("an editor signs in at the provider's login page, works through the gateway with its token, has the token renewed, and signs out", async () => {
    const { page, expectNoErrors } = await openPage(env.browser);
    await page.goto(`${env.web.url}/`);
    await signInAtProvider(page, "ed", "oidc-provider-login");
    await page.waitForURL(`${env.web.url}/`);
    await expect.poll(() => page.getByTestId("account-name").textContent()).toBe("Ed Editor");
    expect(await page.getByTestId("account-roles").getAttribute("data-roles")).toBe("viewer editor");
    expect(await page.getByTestId("read-only").count()).toBe(0);

    // The refresh token stays in HttpOnly cookies on /auth paths; page scripts see no sign-in cookie at all.
    const cookies = await editorCookies(page);
    const signedIn = cookies.find((c) => c.name === "vp_signed_in");
    expect(signedIn).toMatchObject({ httpOnly: true, sameSite: "Lax", path: "/auth" });
    expect(cookies.find((c) => c.name === "vp_id_token")).toMatchObject({ httpOnly: true, path: "/auth/sign-out" });
    expect(cookies.find((c) => c.name === "vp_sign_in")).toBeUndefined();
    expect(await page.evaluate(() => document.cookie)).not.toMatch(/vp_signed_in|vp_id_token/);

    // What the page gets: a short-lived access token the provider issued for the gateway, nothing else.
    const first = await currentToken(page);
    expect(first.status).toBe(200);
    expect(Object.keys(first.body).sort()).toEqual(["access_token", "expires_at", "name", "subject"]);
    const tokenA = first.body.access_token!;
    expect(claimsOf(tokenA)).toMatchObject({ iss: issuer, aud: "vp-api", sub: "ed", roles: ["editor"] });
    expect(idp.grants).toEqual(["authorization_code"]);

    // The editor calls the gateway with it: a write needs the editor role, which the gateway read from the token.
    await page.getByTestId("new-pipeline-title").fill("Signed-in pipeline");
    await page.getByTestId("create-pipeline").click();
    await page.waitForURL(/\/pipelines\/[^/]+$/);
    pipelineId = decodeURIComponent(new URL(page.url()).pathname.split("/").pop()!);
    expect(await pipelineTitle(page)).toBe("Signed-in pipeline");
    await screenshot(page, "oidc-signed-in-editor");
    const gatewayAsA = client(env.stack.baseUrl, { token: tokenA });
    expect((await gatewayAsA.call("GET", "/auth/me")).body).toEqual({ subject: "ed", roles: ["viewer", "editor"] });
    const forged = `${tokenA.slice(0, tokenA.lastIndexOf(".") + 1)}${Buffer.from("not the provider's signature").toString("base64url")}`;
    expect((await client(env.stack.baseUrl, { token: forged }).call("GET", "/auth/me")).status).toBe(401);

    // Past the token's expiry the gateway refuses it; the editor's next call renews it through the refresh token.
    const expiresAt = Date.parse(first.body.expires_at!);
    await page.waitForTimeout(Math.max(0, expiresAt - Date.now()) + 6_000);
    const expired = await gatewayAsA.call("GET", "/auth/me");
    expect(expired.status).toBe(401);
    expect(expired.body.error).toMatch(/expired/);
    await page.getByRole("link", { name: "Back to the pipelines" }).click();
    await page.waitForURL(`${env.web.url}/`);
    await expect.poll(() => page.getByText("Signed-in pipeline").count()).toBeGreaterThan(0);
    // Renewed with the refresh token (more than once if the editor asked again near the end of a renewed token's life).
    expect(idp.grants[0]).toBe("authorization_code");
    expect(idp.grants.slice(1).length).toBeGreaterThanOrEqual(1);
    expect(new Set(idp.grants.slice(1))).toEqual(new Set(["refresh_token"]));
    const second = await currentToken(page);
    const tokenB = second.body.access_token!;
    expect(tokenB).not.toBe(tokenA);
    expect(Date.parse(second.body.expires_at!)).toBeGreaterThan(expiresAt);
    expect((await client(env.stack.baseUrl, { token: tokenB }).call("GET", "/auth/me")).status).toBe(200);
    // Asking again within its lifetime hands out the same token, with no new grant at the provider.
    const grants = idp.grants.length;
    expect((await currentToken(page)).body.access_token).toBe(tokenB);
    expect(idp.grants).toHaveLength(grants);
    // After the gateway refused a token the page asks with ?renew: renewed at once, whatever its lifetime. Two such
    // requests at once (two tabs) share one refresh, so a rotating refresh token is never spent twice.
    const [renewed, alongside] = await page.evaluate(() =>
      Promise.all([1, 2].map(async () => (await (await fetch("/auth/token?renew=1", { cache: "no-store" })).json()).access_token as string)),
    );
    expect(renewed).not.toBe(tokenB);
    expect(alongside).toBe(renewed);
    expect(idp.grants).toHaveLength(grants + 1);
    expect((await client(env.stack.baseUrl, { token: renewed }).call("GET", "/auth/me")).status).toBe(200);

    // Sign-out: the editor drops its cookies and revokes the refresh token; the provider ends its own sign-in.
    await page.getByTestId("sign-out").click();
    await page.waitForURL((url) => url.origin === issuer);
    await screenshot(page, "oidc-provider-sign-out");
    await page.getByRole("button", { name: "Yes, sign me out" }).click();
    await page.waitForURL(`${env.web.url}/auth/signed-out`);
    await page.getByTestId("signed-out").waitFor();
    await screenshot(page, "oidc-signed-out");
    expect(idp.signOuts).toBe(1);
    expect(idp.revocations).toBe(1);
    expect((await editorCookies(page)).map((c) => c.name)).not.toContain("vp_signed_in");
    expect((await currentToken(page)).status).toBe(401);
    // Signed out at the provider too: the editor sends the browser to its login form again.
    await page.goto(`${env.web.url}/`);
    await page.waitForURL((url) => url.origin === issuer);
    await page.locator('input[name="login"]').waitFor();
    expectNoErrors(expectedConsole());
  }, 120_000);

  it("a viewer opening a pipeline's link signs in, lands on it, and sees read-only pages with the reason", async () => {
    await insertNodeFixture(env.db.admin, { pipelineId, id: "voice", title: "Voiceover", type: "generate-voiceover", config: { provider: "local", speed: 1 } });
    const { page, expectNoErrors } = await openPage(env.browser);
    await page.goto(`${env.web.url}/pipelines/${encodeURIComponent(pipelineId)}`);
    await signInAtProvider(page, "vera");
    await page.waitForURL(`${env.web.url}/pipelines/${encodeURIComponent(pipelineId)}`);
    expect(await pipelineTitle(page)).toBe("Signed-in pipeline");
    expect(await page.getByTestId("account-name").textContent()).toBe("Vera Viewer");
    expect(await page.getByTestId("account-roles").getAttribute("data-roles")).toBe("viewer");
    const banner = await page.getByTestId("read-only").textContent();
    expect(banner).toContain("Read only.");
    expect(banner).toContain("Changes need the editor role; your roles: viewer.");
    // The editor offers no change: no palette (the reason instead), a panel whose fields and buttons are off,
    // nodes that neither move nor go with Delete, and no undo or auto-layout.
    expect(await page.getByTestId("palette-read-only").textContent()).toContain("Changes need the editor role; your roles: viewer.");
    expect(await page.locator('[data-testid^="palette-"][data-testid$="-videos"]').count()).toBe(0);
    const card = page.locator('.react-flow__node[data-id="voice"]');
    await card.locator(".node-title").click();
    await page.getByTestId("node-panel").waitFor();
    for (const control of [
      page.getByTestId("panel-title"),
      page.getByTestId("field-speed"),
      page.getByTestId("delete-node"),
      page.getByTestId("toggle-disabled"),
    ]) {
      expect(await control.isDisabled()).toBe(true);
    }
    // Where the node sits on the canvas (its transform, in canvas coordinates: a drag that only pans the view keeps it).
    const placed = () => card.evaluate((el) => (el as HTMLElement).style.transform);
    const before = await placed();
    const box = await card.boundingBox();
    await page.mouse.move(box!.x + 60, box!.y + 12);
    await page.mouse.down();
    await page.mouse.move(box!.x + 260, box!.y + 160, { steps: 8 });
    await page.mouse.up();
    await card.locator(".node-title").click();
    await page.keyboard.press("Delete");
    await page.waitForTimeout(300);
    expect(await placed()).toBe(before);
    expect(await card.count()).toBe(1);
    const { rows } = await env.db.admin.query("select title, config, position from video_production_nodes where pipeline_id = $1", [pipelineId]);
    expect(rows).toEqual([{ title: "Voiceover", config: { provider: "local", speed: 1 }, position: null }]);
    for (const id of ["undo", "redo", "auto-layout"]) expect(await page.getByTestId(id).isDisabled()).toBe(true);
    await screenshot(page, "oidc-viewer-read-only");
    // The list offers no change either: creating, importing, renaming and deleting are off, with the reason.
    await page.getByRole("link", { name: "Back to the pipelines" }).click();
    await page.waitForURL(`${env.web.url}/`);
    await page.getByTestId("pipeline-row").first().waitFor();
    const reason = "Changes need the editor role; your roles: viewer.";
    for (const control of [page.getByTestId("create-pipeline"), page.getByTestId("import-button"), page.getByRole("button", { name: "Rename" }).first()]) {
      expect(await control.isDisabled()).toBe(true);
      expect(await control.getAttribute("title")).toContain(reason);
    }
    expect(await page.getByRole("button", { name: "Delete" }).first().isDisabled()).toBe(true);
    await screenshot(page, "oidc-viewer-list");
    // The gateway agrees: the viewer's token reads, and a write is refused with the same reason.
    const token = (await currentToken(page)).body.access_token!;
    const asViewer = client(env.stack.baseUrl, { token });
    expect((await asViewer.call("GET", `/pipelines/${encodeURIComponent(pipelineId)}`)).status).toBe(200);
    const write = await asViewer.call("POST", "/pipelines", { title: "not allowed" });
    expect(write.status).toBe(403);
    expect(write.body.error).toMatch(/needs the editor role; this token's roles: viewer/);
    expectNoErrors(expectedConsole());
  }, 60_000);

  it("a user the gateway grants no role gets a page that says so instead of failing pages", async () => {
    const { page, expectNoErrors } = await openPage(env.browser);
    await page.goto(`${env.web.url}/`);
    await signInAtProvider(page, "nora");
    await page.getByTestId("no-access").waitFor();
    expect(await page.getByTestId("no-access").textContent()).toMatch(/no access to the pipelines.*needs the viewer role; this token's roles: none/s);
    expect(await page.getByTestId("account-name").textContent()).toBe("Nora Nobody");
    expect(await page.getByTestId("sign-out").isVisible()).toBe(true);
    await screenshot(page, "oidc-no-role");
    // The gateway refuses this user everything (403: GET /auth/me, and the output cookie): that refusal is the page.
    expectNoErrors(expectedConsole(String.raw`status of 403 \(Forbidden\) \(http://127\.0\.0\.1:\d+/v1/video_production/auth/(me|session)\)`));
  }, 60_000);

  it("returns only to the editor's own pages, and refuses a callback that does not match the sign-in it started", async () => {
    const { page, expectNoErrors } = await openPage(env.browser);
    await page.goto(`${env.web.url}/`);
    await signInAtProvider(page, "ed");
    await page.waitForURL(`${env.web.url}/`);
    // Signed in at the provider already: each of these goes there and straight back, to "/" whatever was asked.
    for (const returnTo of ["https://elsewhere.example/steal", "//elsewhere.example/steal", "/\\elsewhere.example", "/auth/sign-in"]) {
      await page.goto(`${env.web.url}/auth/sign-in?returnTo=${encodeURIComponent(returnTo)}`);
      await page.waitForURL((url) => url.href.startsWith(env.web.url) && !url.pathname.startsWith("/auth/"));
      expect(new URL(page.url()).pathname, returnTo).toBe("/");
    }
    // Sign-out is taken from the editor's own pages only: another site posting it (with the cookies) is refused.
    for (const headers of [{ origin: "https://elsewhere.example" }, { "sec-fetch-site": "cross-site" }] as Record<string, string>[]) {
      const refused = await page.request.post(`${env.web.url}/auth/sign-out`, { headers });
      expect(refused.status(), JSON.stringify(headers)).toBe(403);
    }
    expect((await currentToken(page)).status).toBe(200);
    // A callback whose state is not the one the editor sent (a forged or replayed answer) is refused: a new browser
    // starts a sign-in (the provider shows its login form) and an answer with another state arrives instead.
    const other = await openPage(env.browser);
    await other.page.goto(`${env.web.url}/auth/sign-in?returnTo=/`);
    await other.page.locator('input[name="login"]').waitFor();
    expect((await editorCookies(other.page)).map((c) => c.name)).toContain("vp_sign_in");
    await other.page.goto(`${env.web.url}/auth/callback?code=forged-code&state=forged-state&iss=${encodeURIComponent(issuer)}`);
    await other.page.getByTestId("sign-in-problem").waitFor();
    expect(await other.page.getByTestId("sign-in-problem").getAttribute("data-reason")).toBe("failed");
    // A sign-in is answered once: its state and verifier are gone.
    expect((await editorCookies(other.page)).map((c) => c.name)).not.toContain("vp_sign_in");
    other.expectNoErrors(expectedConsole());
    // And a callback with no sign-in in progress at all.
    await page.goto(`${env.web.url}/auth/callback?code=x&state=y`);
    expect(await page.getByTestId("sign-in-problem").getAttribute("data-reason")).toBe("expired");
    await screenshot(page, "oidc-sign-in-problem");
    expectNoErrors(expectedConsole());
  }, 60_000);

  it("pages keep the Content-Security-Policy: the provider is reached by navigation only, never by page scripts", async () => {
    const response = await fetch(`${env.web.url}/auth/signed-out`);
    const csp = response.headers.get("content-security-policy") ?? "";
    const connect =
      csp
        .split(";")
        .map((d) => d.trim())
        .find((d) => d.startsWith("connect-src ")) ?? "";
    expect(connect.split(" ")).toEqual(["connect-src", "'self'", new URL(env.stack.baseUrl).origin]);
    expect(csp).toContain("form-action 'self'");
  });
});
