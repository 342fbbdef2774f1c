import { type NextRequest, NextResponse } from "next/server";
import {
  cookieOptions,
  dueForRenewal,
  editorOrigin,
  ID_TOKEN_COOKIE,
  ProviderUnavailableError,
  renewSignIn,
  SIGNED_IN_COOKIE,
  type SignedIn,
  SignInEndedError,
  signedInCookieValue,
  unseal,
} from "@/lib/oidc-server";

const NO_STORE = { "cache-control": "no-store" };

/**
 * GET /auth/token: the signed-in user's access token for the gateway, renewed with the refresh token (which
 * never leaves the cookie) when it is due or when `?renew` says the gateway refused it. 401: not signed in.
 */
export async function GET(request: NextRequest) {
  const origin = editorOrigin(request);
  const signedIn = unseal<SignedIn>(SIGNED_IN_COOKIE, request.cookies.get(SIGNED_IN_COOKIE)?.value);
  if (!signedIn) return NextResponse.json({ error: "Not signed in", sign_in: "/auth/sign-in" }, { status: 401, headers: NO_STORE });
  let current = signedIn;
  let renewed = false;
  if (request.nextUrl.searchParams.has("renew") || !signedIn.accessToken || dueForRenewal(signedIn)) {
    try {
      current = await renewSignIn(signedIn);
      renewed = true;
    } catch (error) {
      if (error instanceof SignInEndedError) {
        const response = NextResponse.json({ error: error.message, sign_in: "/auth/sign-in" }, { status: 401, headers: NO_STORE });
        response.cookies.set(SIGNED_IN_COOKIE, "", cookieOptions(SIGNED_IN_COOKIE, origin, 0));
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
  if (renewed) response.cookies.set(SIGNED_IN_COOKIE, signedInCookieValue(current), cookieOptions(SIGNED_IN_COOKIE, origin));
  return response;
}
