import { fileURLToPath } from "node:url";

const repoRoot = fileURLToPath(new URL("..", import.meta.url));

/** @type {import("next").NextConfig} */
const config = {
  // The workspace packages export TypeScript sources (src/index.ts); Next compiles them with the app. From
  // @vp/media only its pure overlay layout (@vp/media/layout) is imported.
  transpilePackages: ["@vp/contracts", "@vp/flow-graph", "@vp/media"],
  // The image runs .next/standalone (server.js and only the node_modules files the server traces), not `next start`.
  output: "standalone",
  turbopack: { root: repoRoot },
  outputFileTracingRoot: repoRoot,
  // `npm run typecheck` (tsc -p web/tsconfig.json) checks types; the build only compiles.
  typescript: { ignoreBuildErrors: true },
  poweredByHeader: false,
  reactStrictMode: true,
  devIndicators: false,
  // On every answer; the Content-Security-Policy (per request: a script nonce, the gateway's origin) is set in proxy.ts.
  async headers() {
    return [
      {
        source: "/:path*",
        headers: [
          // The editor's run and delete buttons must not be clickable inside another site's frame.
          { key: "X-Frame-Options", value: "DENY" },
          { key: "X-Content-Type-Options", value: "nosniff" },
          { key: "Referrer-Policy", value: "no-referrer" },
        ],
      },
    ];
  },
};

export default config;
