import { type NextRequest, NextResponse } from "next/server";
import { cookieOptions, editorOrigin, requestOrigin, SIGN_IN_COOKIE, seal, startSignIn } from "@/lib/oidc-server";
import { safeReturnTo } from "@/lib/return-to";
import { problemRedirect } from "../problem/reasons";

/** GET /auth/sign-in?returnTo=/path: to the provider's login page; the callback brings the user back to returnTo. */
export async function GET(request: NextRequest) {
  try {
    const origin = editorOrigin(request);
    const { url, pending } = await startSignIn(origin, safeReturnTo(request.nextUrl.searchParams.get("returnTo")));
    const response = NextResponse.redirect(url, 303);
    // Ten minutes to get through the provider's pages.
    response.cookies.set(SIGN_IN_COOKIE, seal(SIGN_IN_COOKIE, pending), cookieOptions(SIGN_IN_COOKIE, origin, 600));
    response.headers.set("cache-control", "no-store");
    return response;
  } catch (error) {
    console.error("sign-in could not start:", (error as Error).message);
    return problemRedirect(requestOrigin(request), error);
  }
}
