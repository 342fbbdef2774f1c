import { NextResponse } from "next/server";
import { OidcConfigError, ProviderUnavailableError } from "@/lib/oidc-server";

/** Why a sign-in did not complete, as the problem page explains it (a fixed set: nothing from the URL is shown as text). */
export const PROBLEMS = {
  expired: {
    title: "The sign-in expired",
    message: "It took longer than ten minutes, was started again in another tab, or the browser refused the editor's cookies. Sign in again.",
  },
  refused: { title: "The identity provider refused the sign-in", message: "The provider did not sign you in to the editor." },
  unavailable: { title: "The identity provider cannot be reached", message: "The editor could not talk to the identity provider. Try again in a moment." },
  config: {
    title: "Sign-in is not set up correctly",
    message: "The editor's sign-in settings are incomplete; its server log names what is missing (OIDC_* variables, see web/README.md).",
  },
  failed: { title: "The sign-in could not be completed", message: "The provider's answer did not pass the editor's checks; its server log has the reason." },
} as const;
export type Problem = keyof typeof PROBLEMS;

/** The provider's error code (RFC 6749 4.1.2.1), only when it looks like one. */
export const errorCode = (value: string | null | undefined) => (value && /^[a-z_]{1,64}$/.test(value) ? value : undefined);

/** A 303 to /auth/problem with the reason (from an error or given), and the provider's error code if any. */
export function problemRedirect(origin: string, reason: Problem | unknown, code?: string): NextResponse {
  const problem: Problem =
    typeof reason === "string" && reason in PROBLEMS
      ? (reason as Problem)
      : reason instanceof OidcConfigError
        ? "config"
        : reason instanceof ProviderUnavailableError
          ? "unavailable"
          : "failed";
  const url = new URL("/auth/problem", origin);
  url.searchParams.set("reason", problem);
  const error = errorCode(code);
  if (error) url.searchParams.set("error", error);
  const response = NextResponse.redirect(url, 303);
  response.headers.set("cache-control", "no-store");
  return response;
}
