/**
 * The editor's credentials for the gateway. Locally the gateway's dev login (AUTH_DEV_LOGIN, which
 * `npm start` turns on) hands out an all-roles token; the token is kept in memory only, renewed a minute
 * before it expires or after a 401. After each sign-in the gateway sets an HttpOnly cookie that lets
 * <video>, <audio> and <img> load node outputs (they cannot send an Authorization header).
 */

/** The gateway could not be reached while signing in (status 0 in ApiError terms). */
export class SignInUnreachableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SignInUnreachableError";
  }
}

const RENEW_BEFORE_MS = 60_000;

export function createAuth(gatewayUrl: string) {
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
    await fetch(`${root}/auth/session`, { method: "POST", credentials: "include", headers: { authorization: `Bearer ${token}` }, cache: "no-store" }).catch(
      () => undefined,
    );
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

export type Auth = ReturnType<typeof createAuth>;
