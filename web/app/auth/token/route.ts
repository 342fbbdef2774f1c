import { type NextRequest, NextResponse } from "next/server";
import {
  cookieOptions,
  dueForRenewal,
  editorOrigin,
  ID_TOKEN_COOKIE,
  ProviderUnavailableError,
  refreshSession,
  SESSION_COOKIE,
  type Session,
  SessionEndedError,
  sessionCookieValue,
  unseal,
} from "@/lib/oidc-server";

const NO_STORE = { "cache-control": "no-store" };

/**
 * GET /auth/token: the signed-in user's access token for the gateway, renewed with the refresh token (which
 * never leaves the cookie) when it is due or when `?renew` says the gateway refused it. 401: not signed in.
 */
export async function GET(request: NextRequest) {
  const origin = editorOrigin(request);
  const session = unseal<Session>(SESSION_COOKIE, request.cookies.get(SESSION_COOKIE)?.value);
  if (!session) return NextResponse.json({ error: "Not signed in", sign_in: "/auth/sign-in" }, { status: 401, headers: NO_STORE });
  let current = session;
  let renewed = false;
  if (request.nextUrl.searchParams.has("renew") || !session.accessToken || dueForRenewal(session)) {
    try {
      current = await refreshSession(session);
      renewed = true;
    } catch (error) {
      if (error instanceof SessionEndedError) {
        const response = NextResponse.json({ error: error.message, sign_in: "/auth/sign-in" }, { status: 401, headers: NO_STORE });
        response.cookies.set(SESSION_COOKIE, "", cookieOptions(SESSION_COOKIE, origin, 0));
        response.cookies.set(ID_TOKEN_COOKIE, "", cookieOptions(ID_TOKEN_COOKIE, origin, 0));
        return response;
      }
      const message = error instanceof ProviderUnavailableError ? error.message : `The sign-in could not be renewed (${(error as Error).message})`;
      console.error("token renewal failed:", message);
      return NextResponse.json({ error: message }, { status: 503, headers: NO_STORE });
    }
  }
  const response = NextResponse.json(
    { access_token: current.accessToken, expires_at: new Date(current.expiresAt).toISOString(), subject: current.subject, name: current.name },
    { headers: NO_STORE },
  );
  if (renewed) response.cookies.set(SESSION_COOKIE, sessionCookieValue(current), cookieOptions(SESSION_COOKIE, origin));
  return response;
}
