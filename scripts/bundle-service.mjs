// Compiles one service to JavaScript for its image: `node scripts/bundle-service.mjs <service> <outdir>`.
// The service and the workspace packages it imports (@vp/*, TypeScript sources) become ESM files in
// <outdir>/dist; every other package stays an import of node_modules, so OpenTelemetry's pg and http
// instrumentations still patch the real modules when they load (a bundled copy of pg would never be
// patched). Plain JavaScript: it runs in the image's build stage with only esbuild installed.
import { cpSync, existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { build } from "esbuild";

const [service, outArg] = process.argv.slice(2);
if (!service || !outArg || !/^[a-z][a-z-]*$/.test(service)) {
  console.error("usage: node scripts/bundle-service.mjs <service> <outdir>");
  process.exit(2);
}
const root = process.cwd();
const out = resolve(outArg);
const serviceDir = join(root, "services", service);
if (!existsSync(join(serviceDir, "src/main.ts"))) {
  console.error(`bundle-service: no services/${service}/src/main.ts under ${root}`);
  process.exit(2);
}

// Entry points: main, the telemetry preload (started with --import before main's imports load pg), and in
// the gateway image the migration command the Kubernetes Job runs.
const entryPoints = {
  main: join(serviceDir, "src/main.ts"),
  register: join(root, "packages/telemetry/src/register.ts"),
  ...(service === "gateway" ? { migrate: join(root, "packages/db/src/cli.ts") } : {}),
};

/** Bare imports other than the workspace's own @vp/* packages stay imports of node_modules. */
const externalPackages = {
  name: "external-packages",
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => (args.path.startsWith("@vp/") ? undefined : { path: args.path, external: true }));
  },
};

const result = await build({
  entryPoints,
  outdir: join(out, "dist"),
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node24",
  // One copy of each module shared by main and the preload (telemetry's startTracing is idempotent per copy).
  splitting: true,
  chunkNames: "[name]-[hash]",
  // The compiler options the tests use: legacy decorators (Nest), no decorator metadata (explicit @Inject tokens).
  tsconfig: join(root, "tsconfig.json"),
  keepNames: true,
  sourcemap: "linked",
  sourcesContent: false,
  legalComments: "none",
  plugins: [externalPackages],
  logLevel: "warning",
  metafile: true,
});

// Files the bundled code reads at run time, next to where its import.meta.url points.
if (service === "gateway") cpSync(join(root, "packages/db/migrations"), join(out, "migrations"), { recursive: true });
mkdirSync(out, { recursive: true });
cpSync(join(serviceDir, "package.json"), join(out, "package.json"));
const bytes = Object.values(result.metafile.outputs).reduce((sum, o) => sum + o.bytes, 0);
console.log(`bundle-service: ${service} -> ${out}/dist (${Object.keys(result.metafile.outputs).length} files, ${(bytes / 1024).toFixed(0)} KiB)`);
