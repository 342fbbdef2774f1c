/**
 * Sign-in through an OpenID Connect provider, on the editor's server (the /auth route handlers): authorization
 * code flow with PKCE, state and nonce (openid-client), the refresh token kept in an encrypted HttpOnly cookie
 * that page scripts never see. The browser gets only short-lived access tokens, from GET /auth/token.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";
import * as oidc from "openid-client";
import { z } from "zod";

/** The OIDC settings are missing or unusable: the editor cannot sign anyone in until they are fixed. */
export class OidcConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "OidcConfigError";
  }
}

/** The identity provider could not be reached or gave no usable answer (discovery, token endpoint). */
export class ProviderUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ProviderUnavailableError";
  }
}

const Settings = z.object({
  /** The provider's issuer URL; its /.well-known/openid-configuration is read once. Unset: the dev login. */
  OIDC_ISSUER: z.url(),
  /** The client id the editor is registered under at the provider. */
  OIDC_CLIENT_ID: z
    .string({ error: "OIDC_CLIENT_ID is not set: set the client id the editor is registered under at the provider" })
    .min(1, "OIDC_CLIENT_ID is empty: set the client id the editor is registered under at the provider"),
  /** The client secret of a confidential client (sent as client_secret_post); unset for a public client (PKCE only). */
  OIDC_CLIENT_SECRET: z.string().min(1).optional(),
  /** Requested scopes; offline_access asks for the refresh token that keeps the editor signed in. */
  OIDC_SCOPES: z.string().min(1).default("openid profile email offline_access"),
  /** At least 32 bytes encrypting the sign-in cookies; the same on every editor replica. */
  OIDC_COOKIE_SECRET: z
    .string({ error: "OIDC_COOKIE_SECRET is not set: the editor encrypts its sign-in cookies with it (at least 32 bytes: openssl rand -hex 32)" })
    .refine((s) => Buffer.byteLength(s, "utf8") >= 32, "OIDC_COOKIE_SECRET must be at least 32 bytes (openssl rand -hex 32)"),
  /** The editor's public URL (https://editor.example.com) when it runs behind a proxy; default: the URL requests come to. */
  EDITOR_URL: z.url().optional(),
});
type Settings = z.infer<typeof Settings>;

let settingsCache: { settings: Settings; key: Buffer } | null = null;

function settings(): { settings: Settings; key: Buffer } {
  if (settingsCache) return settingsCache;
  const parsed = Settings.safeParse({
    OIDC_ISSUER: process.env.OIDC_ISSUER,
    OIDC_CLIENT_ID: process.env.OIDC_CLIENT_ID,
    OIDC_CLIENT_SECRET: process.env.OIDC_CLIENT_SECRET || undefined,
    OIDC_SCOPES: process.env.OIDC_SCOPES || undefined,
    OIDC_COOKIE_SECRET: process.env.OIDC_COOKIE_SECRET,
    EDITOR_URL: process.env.EDITOR_URL || undefined,
  });
  if (!parsed.success) {
    throw new OidcConfigError(
      `The editor's sign-in settings are incomplete: ${parsed.error.issues.map((i) => `${String(i.path[0])}: ${i.message}`).join("; ")}`,
    );
  }
  const key = Buffer.from(hkdfSync("sha256", parsed.data.OIDC_COOKIE_SECRET, "vp-editor", "sign-in cookies", 32));
  settingsCache = { settings: parsed.data, key };
  return settingsCache;
}

let providerCache: Promise<oidc.Configuration> | null = null;

/** The provider's metadata (discovery), read once; a failed discovery is tried again on the next request. */
export function provider(): Promise<oidc.Configuration> {
  const { settings: s } = settings();
  providerCache ??= (async () => {
    const issuer = new URL(s.OIDC_ISSUER);
    // Plain http only for a provider on this machine (local development and the tests); TLS everywhere else.
    const local = issuer.protocol === "http:" && ["localhost", "127.0.0.1", "[::1]"].includes(issuer.hostname);
    try {
      return await oidc.discovery(
        issuer,
        s.OIDC_CLIENT_ID,
        s.OIDC_CLIENT_SECRET,
        s.OIDC_CLIENT_SECRET ? undefined : oidc.None(),
        local ? { execute: [oidc.allowInsecureRequests], timeout: 10 } : { timeout: 10 },
      );
    } catch (error) {
      throw new ProviderUnavailableError(`Cannot read the identity provider's configuration at ${s.OIDC_ISSUER} (${(error as Error).message})`, {
        cause: error,
      });
    }
  })();
  providerCache.catch(() => (providerCache = null));
  return providerCache;
}

// ---------- cookies ----------

/** The sign-in in progress (PKCE verifier, state, nonce, where to return), read back by the callback only. */
export const SIGN_IN_COOKIE = "vp_sign_in";
/** The signed-in user: refresh token, the current access token, name. Sent to /auth routes only. */
export const SIGNED_IN_COOKIE = "vp_signed_in";
/** The ID token, kept for the provider's sign-out (id_token_hint). Sent to /auth/sign-out only. */
export const ID_TOKEN_COOKIE = "vp_id_token";

export const COOKIE_PATHS = { [SIGN_IN_COOKIE]: "/auth/callback", [SIGNED_IN_COOKIE]: "/auth", [ID_TOKEN_COOKIE]: "/auth/sign-out" } as const;
type CookieName = keyof typeof COOKIE_PATHS;

/** AES-256-GCM with the cookie's name as associated data, so one cookie's value is never accepted as another's. */
export function seal(name: CookieName, value: unknown): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", settings().key, iv).setAAD(Buffer.from(name));
  const body = Buffer.concat([cipher.update(JSON.stringify(value), "utf8"), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString("base64url");
}

/** The cookie's value, or null for one that is absent, altered, or sealed with another secret. */
export function unseal<T>(name: CookieName, sealed: string | undefined): T | null {
  if (!sealed) return null;
  try {
    const raw = Buffer.from(sealed, "base64url");
    const decipher = createDecipheriv("aes-256-gcm", settings().key, raw.subarray(0, 12)).setAAD(Buffer.from(name));
    decipher.setAuthTag(raw.subarray(12, 28));
    return JSON.parse(Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString("utf8")) as T;
  } catch {
    return null;
  }
}

export interface CookieOptions {
  httpOnly: true;
  sameSite: "lax";
  secure: boolean;
  path: string;
  maxAge?: number;
}

/**
 * HttpOnly, SameSite=Lax (the provider's redirect back is a top-level GET from its site), Secure on https, each on
 * the narrowest path that reads it. Without maxAge a cookie lasts as long as the browser; the provider's own
 * sign-in decides how long a browser that left the editor stays signed in.
 */
export function cookieOptions(name: CookieName, origin: string, maxAge?: number): CookieOptions {
  return { httpOnly: true, sameSite: "lax", secure: origin.startsWith("https:"), path: COOKIE_PATHS[name], ...(maxAge === undefined ? {} : { maxAge }) };
}

// ---------- the flow ----------

/**
 * The editor's origin as the browser and the provider see it: EDITOR_URL, else the request's Host (and a proxy's
 * X-Forwarded-Proto/-Host). Not request.url, whose host Next fills in with its own idea of the server's name. A
 * made-up Host yields a redirect URI the provider has not registered, so it refuses the sign-in.
 */
export function editorOrigin(request: Request): string {
  const configured = settings().settings.EDITOR_URL;
  return configured ? new URL(configured).origin : requestOrigin(request);
}

/** The origin the request was sent to, from its Host (what a page about a failure can link back to). */
export function requestOrigin(request: Request): string {
  const first = (name: string) => request.headers.get(name)?.split(",")[0]?.trim() || undefined;
  const url = new URL(request.url);
  const proto = first("x-forwarded-proto") ?? url.protocol.replace(/:$/, "");
  const host = first("x-forwarded-host") ?? first("host") ?? url.host;
  try {
    return new URL(`${proto === "https" ? "https" : "http"}://${host}`).origin;
  } catch {
    return url.origin;
  }
}

export const redirectUri = (origin: string) => `${origin}/auth/callback`;
export const postLogoutRedirectUri = (origin: string) => `${origin}/auth/signed-out`;

export interface SignInState {
  verifier: string;
  state: string;
  nonce: string;
  returnTo: string;
}

/** The provider's authorization URL for a new sign-in and what the callback must check it against. */
export async function startSignIn(origin: string, returnTo: string): Promise<{ url: URL; pending: SignInState }> {
  const config = await provider();
  const verifier = oidc.randomPKCECodeVerifier();
  const pending: SignInState = { verifier, state: oidc.randomState(), nonce: oidc.randomNonce(), returnTo };
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri(origin),
    scope: settings().settings.OIDC_SCOPES,
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
    state: pending.state,
    nonce: pending.nonce,
  });
  return { url, pending };
}

/** The signed-in user as the signed-in cookie holds it: tokens, and the name to show. */
export interface SignedIn {
  accessToken: string;
  /** Epoch milliseconds. */
  issuedAt: number;
  expiresAt: number;
  refreshToken?: string;
  subject: string;
  name: string;
}

/** Who signed in, from the ID token: a name to show (name, preferred_username, email, else the subject). */
function nameOf(claims: oidc.IDToken | undefined): { subject: string; name: string } {
  const subject = claims?.sub ?? "unknown";
  const pick = (key: string) => (typeof claims?.[key] === "string" && (claims[key] as string).trim() ? (claims[key] as string) : undefined);
  return { subject, name: pick("name") ?? pick("preferred_username") ?? pick("email") ?? subject };
}

/** Providers that omit expires_in: assume five minutes, and refresh then. */
const DEFAULT_LIFETIME_S = 300;

/** Checks the provider's answer on the callback URL (state, PKCE, nonce, ID token) and exchanges the code. */
export async function finishSignIn(origin: string, callbackUrl: URL, pending: SignInState): Promise<{ signedIn: SignedIn; idToken?: string }> {
  const config = await provider();
  // The redirect URI at the token endpoint must be the registered one, also behind a proxy that rewrites the host.
  const current = new URL(`${redirectUri(origin)}${callbackUrl.search}`);
  const tokens = await oidc.authorizationCodeGrant(config, current, {
    pkceCodeVerifier: pending.verifier,
    expectedState: pending.state,
    expectedNonce: pending.nonce,
    idTokenExpected: true,
  });
  return {
    signedIn: {
      accessToken: tokens.access_token,
      issuedAt: Date.now(),
      expiresAt: Date.now() + (tokens.expiresIn() ?? DEFAULT_LIFETIME_S) * 1000,
      refreshToken: tokens.refresh_token,
      ...nameOf(tokens.claims()),
    },
    idToken: tokens.id_token,
  };
}

/** Renew this long before expiry: a minute, or a third of a short token's lifetime. */
export function renewMarginMs(lifetimeMs: number): number {
  return Math.min(60_000, Math.max(0, lifetimeMs) / 3);
}

/** Whether the access token is due for renewal (expired, or within the margin). */
export const dueForRenewal = (signedIn: SignedIn, now = Date.now()) => signedIn.expiresAt - now <= renewMarginMs(signedIn.expiresAt - signedIn.issuedAt);

/** Browsers drop a cookie over 4096 bytes (name and attributes included) without a word. */
const MAX_COOKIE_VALUE = 3800;

/**
 * The signed-in cookie's value. A provider with large tokens may not fit them all: then the access token is left
 * out and renewed on each GET /auth/token instead (the refresh token is what must be kept).
 */
export function signedInCookieValue(signedIn: SignedIn): string {
  const sealed = seal(SIGNED_IN_COOKIE, signedIn);
  if (sealed.length <= MAX_COOKIE_VALUE) return sealed;
  const slim = seal(SIGNED_IN_COOKIE, { ...signedIn, accessToken: "", issuedAt: 0, expiresAt: 0 });
  if (slim.length > MAX_COOKIE_VALUE) throw new OidcConfigError("The provider's refresh token is too large to keep in a cookie (over 2.5 kB)");
  return slim;
}

/** The ID token cookie's value, or null when the token is too large to keep (sign-out then sends client_id instead). */
export function idTokenCookieValue(idToken: string | undefined): string | null {
  if (!idToken) return null;
  const sealed = seal(ID_TOKEN_COOKIE, idToken);
  return sealed.length <= MAX_COOKIE_VALUE ? sealed : null;
}

/**
 * Refreshes run once per refresh token at a time, and a result is kept a little while for callers still holding
 * the access token it replaced: two tabs asking at once would otherwise both spend the same (rotating) refresh
 * token, and the provider revokes a reused one. A caller that already has the result's token gets a new refresh.
 */
const refreshes = new Map<string, { result: Promise<SignedIn>; settled?: SignedIn; until: number }>();
const REFRESH_REUSE_MS = 30_000;

export function renewSignIn(signedIn: SignedIn): Promise<SignedIn> {
  const refreshToken = signedIn.refreshToken;
  if (!refreshToken) return Promise.reject(new SignInEndedError("The provider gave no refresh token (is offline_access among OIDC_SCOPES?)"));
  const now = Date.now();
  for (const [key, entry] of refreshes) if (entry.until < now) refreshes.delete(key);
  const known = refreshes.get(refreshToken);
  if (known && (!known.settled || known.settled.accessToken !== signedIn.accessToken)) return known.result;
  const result = (async () => {
    const config = await provider();
    let tokens: Awaited<ReturnType<typeof oidc.refreshTokenGrant>>;
    try {
      tokens = await oidc.refreshTokenGrant(config, refreshToken);
    } catch (error) {
      // invalid_grant: the refresh token expired or was revoked, so the user signs in again; any other refusal
      // (invalid_client, say) is the editor's registration, which signing in again would not fix.
      if (error instanceof oidc.ResponseBodyError && error.error === "invalid_grant") {
        throw new SignInEndedError(`The provider refused to renew the sign-in (${error.error}): sign in again`, { cause: error });
      }
      if (error instanceof oidc.ResponseBodyError) {
        const detail = error.error_description ? `: ${error.error_description}` : "";
        throw new ProviderUnavailableError(
          `The identity provider refused to renew the sign-in (${error.error}${detail}); check the editor's client registration`,
          {
            cause: error,
          },
        );
      }
      throw new ProviderUnavailableError(`Cannot renew the sign-in at the identity provider (${(error as Error).message})`, { cause: error });
    }
    const claims = tokens.claims();
    return {
      accessToken: tokens.access_token,
      issuedAt: Date.now(),
      expiresAt: Date.now() + (tokens.expiresIn() ?? DEFAULT_LIFETIME_S) * 1000,
      refreshToken: tokens.refresh_token ?? refreshToken,
      ...(claims ? nameOf(claims) : { subject: signedIn.subject, name: signedIn.name }),
    };
  })();
  const entry: { result: Promise<SignedIn>; settled?: SignedIn; until: number } = { result, until: now + REFRESH_REUSE_MS };
  refreshes.set(refreshToken, entry);
  result.then(
    (renewed) => (entry.settled = renewed),
    () => refreshes.get(refreshToken) === entry && refreshes.delete(refreshToken),
  );
  return result;
}

/** The provider will not renew this sign-in (refresh token expired or revoked): the user signs in again. */
export class SignInEndedError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "SignInEndedError";
  }
}

/**
 * Where the browser goes to sign out: the provider's end_session_endpoint (RP-initiated logout) when it has
 * one, back to /auth/signed-out; else /auth/signed-out directly. The refresh token is revoked where the
 * provider offers revocation, so it is dead even if a copy of the cookie survives.
 */
export async function signOutUrl(origin: string, idToken: string | undefined, refreshToken: string | undefined): Promise<string> {
  const back = postLogoutRedirectUri(origin);
  let config: oidc.Configuration;
  try {
    config = await provider();
  } catch {
    return back;
  }
  const metadata = config.serverMetadata();
  if (refreshToken && metadata.revocation_endpoint) {
    await oidc.tokenRevocation(config, refreshToken, { token_type_hint: "refresh_token" }).catch(() => undefined);
  }
  if (!metadata.end_session_endpoint) return back;
  return oidc
    .buildEndSessionUrl(config, {
      post_logout_redirect_uri: back,
      ...(idToken ? { id_token_hint: idToken } : { client_id: config.clientMetadata().client_id }),
    })
    .toString();
}
