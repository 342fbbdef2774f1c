import { type NextRequest, NextResponse } from "next/server";
import { cookieOptions, editorOrigin, ID_TOKEN_COOKIE, SIGNED_IN_COOKIE, type SignedIn, signOutUrl, unseal } from "@/lib/oidc-server";

/**
 * POST /auth/sign-out (from the editor's own pages only): drops the sign-in cookies, revokes the refresh token
 * and answers where the browser goes next, the provider's sign-out page when it has one.
 */
export async function POST(request: NextRequest) {
  const origin = editorOrigin(request);
  const site = request.headers.get("sec-fetch-site");
  const from = request.headers.get("origin");
  if ((site && site !== "same-origin") || (from && from !== origin)) {
    return NextResponse.json({ error: "Sign-out is accepted from the editor's own pages only" }, { status: 403 });
  }
  const signedIn = unseal<SignedIn>(SIGNED_IN_COOKIE, request.cookies.get(SIGNED_IN_COOKIE)?.value);
  const idToken = unseal<string>(ID_TOKEN_COOKIE, request.cookies.get(ID_TOKEN_COOKIE)?.value) ?? undefined;
  const redirect = await signOutUrl(origin, idToken, signedIn?.refreshToken);
  const response = NextResponse.json({ redirect }, { headers: { "cache-control": "no-store" } });
  response.cookies.set(SIGNED_IN_COOKIE, "", cookieOptions(SIGNED_IN_COOKIE, origin, 0));
  response.cookies.set(ID_TOKEN_COOKIE, "", cookieOptions(ID_TOKEN_COOKIE, origin, 0));
  return response;
}
