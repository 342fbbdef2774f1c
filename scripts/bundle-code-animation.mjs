// Bundles the code animation's composition (packages/code-animation/src/entry.ts) for Chromium ahead of time:
// `node scripts/bundle-code-animation.mjs <outdir>`. The executor-ffmpeg image serves this directory
// (CODE_ANIMATION_BUNDLE), so neither Remotion's bundler nor the composition's sources ship in it.
import { resolve } from "node:path";
import { bundle } from "@remotion/bundler";

const [outArg] = process.argv.slice(2);
if (!outArg) {
  console.error("usage: node scripts/bundle-code-animation.mjs <outdir>");
  process.exit(2);
}
const started = performance.now();
const serveUrl = await bundle({
  entryPoint: resolve("packages/code-animation/src/entry.ts"),
  outDir: resolve(outArg),
  enableCaching: false,
  onProgress: () => undefined,
});
console.log(`bundle-code-animation: ${serveUrl} in ${Math.round((performance.now() - started) / 1000)} s`);
