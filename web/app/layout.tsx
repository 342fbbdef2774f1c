import type { Metadata } from "next";
import type { ReactNode } from "react";
import { headers } from "next/headers";
import { connection } from "next/server";
import { GatewayProvider } from "@/components/gateway";
import { THEME_SCRIPT } from "@/lib/theme";
import "@xyflow/react/dist/style.css";
import "./globals.css";

export const metadata: Metadata = {
  title: "Video pipelines",
  description: "Build, run and watch video pipelines",
};

/** Where the browser finds the gateway's HTTP API and SSE stream. Read per request, not at build time. */
function gatewayUrl(): string {
  return process.env.GATEWAY_URL ?? "http://localhost:3061";
}

/** OIDC_ISSUER set: users sign in at that provider (web/README.md, "Signing in"); unset: the gateway's dev login. */
function signIn(): "dev" | "oidc" {
  return process.env.OIDC_ISSUER ? "oidc" : "dev";
}

export default async function RootLayout({ children }: { children: ReactNode }) {
  await connection();
  // proxy.ts's per-request nonce: the CSP admits this inline script, which applies the stored theme before paint.
  const nonce = (await headers()).get("x-nonce") ?? undefined;
  return (
    <html lang="en" suppressHydrationWarning>
      <head>
        {/* biome-ignore lint/security/noDangerouslySetInnerHtml: a constant of ours (THEME_SCRIPT), nothing from a request. */}
        <script nonce={nonce} dangerouslySetInnerHTML={{ __html: THEME_SCRIPT }} />
      </head>
      <body>
        <GatewayProvider gatewayUrl={gatewayUrl()} signIn={signIn()}>
          {children}
        </GatewayProvider>
      </body>
    </html>
  );
}
