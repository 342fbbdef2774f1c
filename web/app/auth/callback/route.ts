import { type NextRequest, NextResponse } from "next/server";
import {
  cookieOptions,
  editorOrigin,
  finishSignIn,
  requestOrigin,
  ID_TOKEN_COOKIE,
  idTokenCookieValue,
  SIGNED_IN_COOKIE,
  SIGN_IN_COOKIE,
  type SignInState,
  signedInCookieValue,
  unseal,
} from "@/lib/oidc-server";
import { safeReturnTo } from "@/lib/return-to";
import { problemRedirect } from "../problem/reasons";

/**
 * GET /auth/callback: the provider's redirect back. openid-client checks state, the PKCE verifier, the nonce and the
 * ID token and exchanges the code; the tokens go into HttpOnly cookies and the browser on to where it started.
 */
export async function GET(request: NextRequest) {
  let origin: string;
  try {
    origin = editorOrigin(request);
  } catch (error) {
    console.error("sign-in failed at the callback:", (error as Error).message);
    return problemRedirect(requestOrigin(request), error);
  }
  const pending = unseal<SignInState>(SIGN_IN_COOKIE, request.cookies.get(SIGN_IN_COOKIE)?.value);
  if (!pending) return problemRedirect(origin, "expired");
  const refusal = request.nextUrl.searchParams.get("error");
  if (refusal) return clearSignIn(problemRedirect(origin, "refused", refusal), origin);
  try {
    const { signedIn, idToken } = await finishSignIn(origin, request.nextUrl, pending);
    const response = NextResponse.redirect(new URL(safeReturnTo(pending.returnTo), origin), 303);
    response.cookies.set(SIGNED_IN_COOKIE, signedInCookieValue(signedIn), cookieOptions(SIGNED_IN_COOKIE, origin));
    const idCookie = idTokenCookieValue(idToken);
    if (idCookie) response.cookies.set(ID_TOKEN_COOKIE, idCookie, cookieOptions(ID_TOKEN_COOKIE, origin));
    return clearSignIn(response, origin);
  } catch (error) {
    console.error("sign-in failed at the callback:", (error as Error).message);
    return clearSignIn(problemRedirect(origin, error), origin);
  }
}

/** A sign-in is answered once: its state and verifier are not kept for a second try. */
function clearSignIn(response: NextResponse, origin: string): NextResponse {
  response.cookies.set(SIGN_IN_COOKIE, "", cookieOptions(SIGN_IN_COOKIE, origin, 0));
  response.headers.set("cache-control", "no-store");
  return response;
}
