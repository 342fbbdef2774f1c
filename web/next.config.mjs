import { fileURLToPath } from "node:url";

const repoRoot = fileURLToPath(new URL("..", import.meta.url));

/** @type {import("next").NextConfig} */
const config = {
  // The workspace packages export TypeScript sources (src/index.ts); Next compiles them with the app.
  transpilePackages: ["@vp/contracts", "@vp/flow-graph"],
  // The image runs .next/standalone (server.js and only the node_modules files the server traces), not `next start`.
  output: "standalone",
  turbopack: { root: repoRoot },
  outputFileTracingRoot: repoRoot,
  // `npm run typecheck` (tsc -p web/tsconfig.json) checks types; the build only compiles.
  typescript: { ignoreBuildErrors: true },
  poweredByHeader: false,
  reactStrictMode: true,
  devIndicators: false,
};

export default config;
