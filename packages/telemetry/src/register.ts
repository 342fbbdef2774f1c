/**
 * Preload that starts OpenTelemetry before any service module is evaluated:
 *
 *   node --import tsx --import ./packages/telemetry/src/register.ts services/<name>/src/main.ts
 *
 * Why a preload: the pg instrumentation patches `pg` when it is first loaded. Under ESM the whole static
 * import graph of main.ts (including @vp/db -> pg) is evaluated before main's first statement runs, so a
 * startTracing() call in main.ts comes too late for pg (verified: without the preload no pg spans are
 * exported). main.ts still calls startTracing(); it is idempotent and returns this handle.
 *
 * Service name: OTEL_SERVICE_NAME, else the <name> of services/<name>/ in the entry path. Version:
 * SERVICE_VERSION, else the version in services/<name>/package.json.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { startTracing } from "./tracing";

function serviceOf(entry: string | undefined): { name?: string; version?: string } {
  if (!entry) return {};
  const match = /services[\\/]([^\\/]+)[\\/]/.exec(resolve(entry));
  if (!match) return {};
  const root = resolve(entry).slice(0, match.index + match[0].length);
  const pkg = join(dirname(join(root, "x")), "package.json");
  let version: string | undefined;
  if (existsSync(pkg)) {
    try {
      version = (JSON.parse(readFileSync(pkg, "utf8")) as { version?: string }).version;
    } catch {
      version = undefined;
    }
  }
  return { name: match[1], version };
}

const found = serviceOf(process.argv[1]);
const serviceName = process.env.OTEL_SERVICE_NAME || found.name || "video-pipelines";
startTracing({ serviceName, serviceVersion: process.env.SERVICE_VERSION || found.version });
