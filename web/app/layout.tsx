import type { Metadata } from "next";
import type { ReactNode } from "react";
import { connection } from "next/server";
import { GatewayProvider } from "@/components/gateway";
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

export default async function RootLayout({ children }: { children: ReactNode }) {
  await connection();
  return (
    <html lang="en">
      <body>
        <GatewayProvider gatewayUrl={gatewayUrl()}>{children}</GatewayProvider>
      </body>
    </html>
  );
}
