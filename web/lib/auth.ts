/**
 * The editor's credentials for the gateway. Locally the gateway's dev login (AUTH_DEV_LOGIN, which
 * `npm start` turns on) hands out an all-roles token; deployed, the editor's server signs users in at an
 * OpenID Connect provider (lib/oidc-server.ts) and hands the page short-lived access tokens from GET /auth/token.
 * Either way the token is kept in memory only, renewed before it expires or after a 401. After each new token
 * the gateway sets an HttpOnly cookie that lets <video>, <audio> and <img> load node outputs (they cannot send an
 * Authorization header).
 */

/** The gateway could not be reached while signing in (status 0 in ApiError terms). */
export class SignInUnreachableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SignInUnreachableError";
  }
}

const RENEW_BEFORE_MS = 60_000;

/** What the gateway client needs from a way of signing in. */
export interface Auth {
  /** A bearer token for the next call (null when there is none to send). */
  token(): Promise<string | null>;
  /** Drops the token after the gateway refused it (expired, revoked, or the gateway's key changed). */
  invalidate(): void;
}

/** Lets media elements load outputs with this token (the gateway's HttpOnly output cookie). */
function shareWithMedia(root: string, token: string) {
  return fetch(`${root}/auth/session`, { method: "POST", credentials: "include", headers: { authorization: `Bearer ${token}` }, cache: "no-store" }).catch(
    () => undefined,
  );
}

export function createAuth(gatewayUrl: string): Auth {
  const root = `${gatewayUrl.replace(/\/+$/, "")}/v1/video_production`;
  let current: { token: string; expiresAt: number } | null = null;
  let pending: Promise<string | null> | null = null;

  async function signIn(): Promise<string | null> {
    let response: Response;
    try {
      response = await fetch(`${root}/auth/dev-login`, { method: "POST", cache: "no-store" });
    } catch (error) {
      throw new SignInUnreachableError(`Cannot reach the gateway at ${gatewayUrl} (${(error as Error).message}). Is it running?`);
    }
    // Dev login off (a deployed gateway): calls go without a token and the gateway's 401 says what is missing.
    if (!response.ok) return null;
    const { token, expires_at } = (await response.json()) as { token: string; expires_at: string };
    current = { token, expiresAt: Date.parse(expires_at) };
    await shareWithMedia(root, token);
    return token;
  }

  return {
    /** A bearer token for the next call (null when the gateway offers no dev login). */
    async token(): Promise<string | null> {
      if (current && current.expiresAt - Date.now() > RENEW_BEFORE_MS) return current.token;
      pending ??= signIn().finally(() => (pending = null));
      return pending;
    },
    /** Drops the token after the gateway refused it (expired, or the gateway's secret changed). */
    invalidate() {
      current = null;
    },
  };
}

/** Who is signed in: the provider's name for them, and the roles the gateway grants their token. */
export interface Account {
  subject: string;
  name: string;
  roles: string[];
}

/** A way out of the editor's sign-in: where the browser goes next (the provider's sign-out page, if it has one). */
export interface OidcAuth extends Auth {
  /** The signed-in user (after the first token): their name, and their roles as the gateway reads them. */
  account(): Promise<Account>;
  signOut(): Promise<void>;
}

/** The gateway refused every role to this user (403 on GET /auth/me): the reason is the gateway's. */
export class NoAccessError extends Error {
  constructor(
    message: string,
    /** Who signed in, as the provider names them. */
    readonly userName: string,
  ) {
    super(message);
    this.name = "NoAccessError";
  }
}

/**
 * Sign-in through the editor's server (OIDC_ISSUER set): GET /auth/token answers a short-lived access token
 * (renewed there with the refresh token, which stays in an HttpOnly cookie); 401 means nobody is signed in,
 * and the browser goes to the provider's login page, coming back to the page it was on.
 */
export function createOidcAuth(gatewayUrl: string): OidcAuth {
  const root = `${gatewayUrl.replace(/\/+$/, "")}/v1/video_production`;
  let current: { token: string; expiresAt: number; issuedAt: number; name: string; subject: string } | null = null;
  let pending: Promise<string> | null = null;
  let renew = false;

  async function fetchToken(): Promise<string> {
    const url = renew ? "/auth/token?renew=1" : "/auth/token";
    renew = false;
    let response: Response;
    try {
      response = await fetch(url, { cache: "no-store", credentials: "same-origin" });
    } catch (error) {
      throw new SignInUnreachableError(`Cannot reach the editor's server to sign in (${(error as Error).message})`);
    }
    if (response.status === 401) {
      const back = `${window.location.pathname}${window.location.search}${window.location.hash}`;
      window.location.assign(`/auth/sign-in?returnTo=${encodeURIComponent(back)}`);
      // The page is being left for the provider's login: no call should go out, or fail on screen, meanwhile.
      return new Promise<string>(() => {});
    }
    const body = (await response.json().catch(() => ({}))) as { access_token?: string; expires_at?: string; name?: string; subject?: string; error?: string };
    if (!response.ok || !body.access_token || !body.expires_at) {
      throw new SignInUnreachableError(body.error ?? `The editor's server could not give a token (${response.status})`);
    }
    current = { token: body.access_token, expiresAt: Date.parse(body.expires_at), issuedAt: Date.now(), name: body.name ?? "", subject: body.subject ?? "" };
    await shareWithMedia(root, body.access_token);
    return body.access_token;
  }

  async function token(): Promise<string> {
    // Renewed a minute before expiry, or a third of the lifetime before for a short-lived token.
    if (current && current.expiresAt - Date.now() > Math.min(RENEW_BEFORE_MS, (current.expiresAt - current.issuedAt) / 3)) return current.token;
    pending ??= fetchToken().finally(() => (pending = null));
    return pending;
  }

  return {
    token,
    invalidate() {
      current = null;
      renew = true;
    },
    async account() {
      const bearer = await token();
      let response: Response;
      try {
        response = await fetch(`${root}/auth/me`, { headers: { authorization: `Bearer ${bearer}` }, cache: "no-store" });
      } catch (error) {
        throw new SignInUnreachableError(`Cannot reach the gateway at ${gatewayUrl} (${(error as Error).message}). Is it running?`);
      }
      const body = (await response.json().catch(() => ({}))) as { subject?: string; roles?: string[]; error?: string };
      if (response.status === 403) throw new NoAccessError(body.error ?? "The gateway grants this user no role", current?.name ?? "");
      if (!response.ok) throw new SignInUnreachableError(body.error ?? `The gateway answered ${response.status} to GET /auth/me`);
      return { subject: body.subject ?? current?.subject ?? "", name: current?.name || body.subject || "", roles: body.roles ?? [] };
    },
    async signOut() {
      const response = await fetch("/auth/sign-out", { method: "POST", cache: "no-store", credentials: "same-origin" });
      const body = (await response.json().catch(() => ({}))) as { redirect?: string };
      current = null;
      window.location.assign(body.redirect ?? "/auth/signed-out");
    },
  };
}
