/**
 * `npm run build:lambdas`: one deployment package per function, lambdas/dist/<name>.zip, holding a single
 * esbuild bundle `index.mjs` (Node.js 22 syntax, ESM; handler "index.handler") with @vp/media, @vp/storage,
 * @vp/contracts and the AWS SDK inside. ffmpeg/ffprobe are not in the zip: they come from a Lambda layer
 * (see lambdas/README.md), on the PATH at /opt/bin.
 */
import { createHash } from "node:crypto";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { zip } from "./zip";

export const FUNCTIONS = ["video-merger", "audio-mixer", "video-composer"] as const;
export type FunctionName = (typeof FUNCTIONS)[number];

const LAMBDAS = resolve(dirname(fileURLToPath(import.meta.url)), "..");

export interface BuiltFunction {
  name: FunctionName;
  zip: string;
  bundle: string;
  bytes: number;
  sha256: string;
}

export async function buildLambdas(options: { outDir?: string; functions?: readonly FunctionName[] } = {}): Promise<BuiltFunction[]> {
  const outDir = resolve(options.outDir ?? join(LAMBDAS, "dist"));
  const built: BuiltFunction[] = [];
  for (const name of options.functions ?? FUNCTIONS) {
    const dir = join(outDir, name);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    const bundle = join(dir, "index.mjs");
    await build({
      entryPoints: [join(LAMBDAS, name, "handler.ts")],
      outfile: bundle,
      bundle: true,
      platform: "node",
      // Lambda's nodejs24.x (or nodejs22.x) runtime; the same bundle also runs on the Node 20 the tests use.
      target: "node22",
      format: "esm",
      minifySyntax: true,
      minifyWhitespace: true,
      // Error classes keep their names: they travel back to the executor as errorType.
      keepNames: true,
      legalComments: "none",
      logLevel: "warning",
      // Some dependencies are CommonJS and call require(); an ESM bundle has none of its own.
      banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
    });
    const code = await readFile(bundle);
    const archive = zip([{ name: "index.mjs", data: code }]);
    const zipPath = join(outDir, `${name}.zip`);
    await writeFile(zipPath, archive);
    built.push({ name, zip: zipPath, bundle, bytes: archive.length, sha256: createHash("sha256").update(archive).digest("hex") });
  }
  return built;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const built = await buildLambdas();
  for (const b of built) console.log(`${relative(process.cwd(), b.zip)}  ${(b.bytes / 1024 / 1024).toFixed(2)} MiB  sha256 ${b.sha256}`);
}
