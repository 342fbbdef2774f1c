import { NextResponse, type NextRequest } from "next/server";
import { contentSecurityPolicy } from "@/lib/csp";

/**
 * Every page gets a fresh script nonce and the CSP naming the gateway the browser talks to (GATEWAY_URL, read
 * per request like app/layout.tsx does). Next reads the nonce from the request's CSP header and puts it on its
 * scripts. The static headers (frame, sniffing, referrer) are in next.config.mjs.
 */
export function proxy(request: NextRequest) {
  const nonce = Buffer.from(crypto.randomUUID()).toString("base64");
  const csp = contentSecurityPolicy({
    nonce,
    gatewayUrl: process.env.GATEWAY_URL ?? "http://localhost:3061",
    dev: process.env.NODE_ENV === "development",
    mediaOrigins: process.env.MEDIA_ORIGINS,
  });
  const headers = new Headers(request.headers);
  headers.set("x-nonce", nonce);
  headers.set("content-security-policy", csp);
  const response = NextResponse.next({ request: { headers } });
  response.headers.set("content-security-policy", csp);
  return response;
}

export const config = {
  // Pages only: static files carry no script, and prefetches are not rendered as documents.
  matcher: [
    {
      source: "/((?!_next/static|_next/image|icon.svg).*)",
      missing: [
        { type: "header", key: "next-router-prefetch" },
        { type: "header", key: "purpose", value: "prefetch" },
      ],
    },
  ],
};
