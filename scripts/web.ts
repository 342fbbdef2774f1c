/**
 * The editor (web/, Next.js) as a process: build it when its sources changed, then `next start`.
 * Used by `npm start` (port 3065) and by the browser tests (tests/web), which start it on a free port
 * against their own gateway. The build is cached: a hash of everything it is made of is stored next to it,
 * and a lock keeps two test files from building at once.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join, relative, resolve } from "node:path";

export const ROOT = resolve(import.meta.dirname, "..");
export const WEB_DIR = join(ROOT, "web");
const NEXT_BIN = join(ROOT, "node_modules/next/dist/bin/next");
const HASH_FILE = join(WEB_DIR, ".next/vp-build-hash");
const LOCK_DIR = join(WEB_DIR, ".next-build-lock");
/** What the bundle is made of: the app and the workspace packages it compiles in. */
const INPUTS = ["web", "packages/contracts/src", "packages/flow-graph/src"];
const SKIP = new Set([".next", "node_modules", ".next-build-lock", "next-env.d.ts", "Dockerfile"]);

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (SKIP.has(entry.name) || entry.name.endsWith(".tsbuildinfo")) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await listFiles(path)));
    else if (entry.isFile() && !entry.name.endsWith(".test.ts")) out.push(path);
  }
  return out;
}

export async function webSourceHash(): Promise<string> {
  const hash = createHash("sha256");
  const nextVersion = JSON.parse(await readFile(join(ROOT, "node_modules/next/package.json"), "utf8")).version as string;
  hash.update(`next@${nextVersion}\n`);
  for (const input of INPUTS) {
    for (const file of (await listFiles(join(ROOT, input))).sort()) {
      hash.update(relative(ROOT, file));
      hash.update("\0");
      hash.update(await readFile(file));
      hash.update("\0");
    }
  }
  return hash.digest("hex");
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** mkdir is atomic: whoever creates the lock directory builds; the others wait. A dead holder's lock is taken over. */
async function withBuildLock<T>(fn: () => Promise<T>, timeoutMs = 300_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await mkdir(LOCK_DIR);
      await writeFile(join(LOCK_DIR, "pid"), String(process.pid));
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const holder = Number(await readFile(join(LOCK_DIR, "pid"), "utf8").catch(() => "NaN"));
      const age = Date.now() - (await stat(LOCK_DIR).catch(() => ({ mtimeMs: Date.now() }))).mtimeMs;
      if ((Number.isFinite(holder) && !pidAlive(holder)) || (!Number.isFinite(holder) && age > 10_000)) {
        await rm(LOCK_DIR, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`Timed out waiting for another editor build (lock ${LOCK_DIR}, pid ${holder})`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(LOCK_DIR, { recursive: true, force: true });
  }
}

export interface BuildResult {
  built: boolean;
  ms: number;
}

/** Runs `next build` in web/ unless the current build was made from exactly these sources. */
export async function ensureWebBuild(log: (line: string) => void = () => {}): Promise<BuildResult> {
  const started = Date.now();
  return withBuildLock(async () => {
    const hash = await webSourceHash();
    const current = await readFile(HASH_FILE, "utf8").catch(() => "");
    const hasBuild = await stat(join(WEB_DIR, ".next/BUILD_ID")).then(
      () => true,
      () => false,
    );
    if (current === hash && hasBuild) return { built: false, ms: Date.now() - started };
    log("building the editor (next build)…");
    const output: string[] = [];
    const code = await new Promise<number | null>((resolveExit, reject) => {
      const child = spawn(process.execPath, [NEXT_BIN, "build"], {
        cwd: WEB_DIR,
        env: { ...process.env, NEXT_TELEMETRY_DISABLED: "1", NODE_ENV: "production" },
        stdio: ["ignore", "pipe", "pipe"],
      });
      child.stdout.setEncoding("utf8").on("data", (c: string) => output.push(c));
      child.stderr.setEncoding("utf8").on("data", (c: string) => output.push(c));
      child.once("error", reject);
      child.once("exit", resolveExit);
    });
    if (code !== 0) throw new Error(`next build failed (exit ${code}):\n${output.join("").slice(-4000)}`);
    await writeFile(HASH_FILE, hash);
    const ms = Date.now() - started;
    log(`editor built in ${(ms / 1000).toFixed(1)} s`);
    return { built: true, ms };
  });
}

export interface WebProcess {
  url: string;
  proc: ChildProcess;
  /** Everything the server printed (for a failing test's message). */
  output: string[];
  stop(): Promise<void>;
}

/**
 * `next start` on `port` with the gateway URL the browser should use. Resolves when the server answers.
 * `next start` serves from this one process (no workers), so stopping it stops the editor.
 */
export async function startWeb(options: {
  port: number;
  gatewayUrl: string;
  hostname?: string;
  onLine?: (line: string) => void;
  /** More environment for the editor (MEDIA_ORIGINS, say). */
  env?: Record<string, string>;
}): Promise<WebProcess> {
  // Loopback unless told otherwise (HOST, as for the gateway): the editor drives an API whose dev login hands out
  // all-roles tokens, and it is no page for the network. Browsers fall back from ::1 to 127.0.0.1 for localhost.
  const host = options.hostname ?? (process.env.HOST || "127.0.0.1");
  const output: string[] = [];
  const proc = spawn(process.execPath, [NEXT_BIN, "start", "-p", String(options.port), ...(host ? ["-H", host] : [])], {
    cwd: WEB_DIR,
    env: { ...process.env, ...options.env, NEXT_TELEMETRY_DISABLED: "1", NODE_ENV: "production", GATEWAY_URL: options.gatewayUrl },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const onData = (chunk: string) => {
    output.push(chunk);
    for (const line of chunk.split("\n")) if (line.trim()) options.onLine?.(line);
  };
  proc.stdout!.setEncoding("utf8").on("data", onData);
  proc.stderr!.setEncoding("utf8").on("data", onData);
  let exited = false;
  const exit = new Promise<void>((r) =>
    proc.once("exit", () => {
      exited = true;
      r();
    }),
  );
  const url = `http://${host && host !== "0.0.0.0" ? host : "localhost"}:${options.port}`;
  const probe = `http://${host && host !== "0.0.0.0" ? host : "127.0.0.1"}:${options.port}/icon.svg`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited) throw new Error(`next start exited before it was ready:\n${output.join("").slice(-3000)}`);
    try {
      const response = await fetch(probe);
      if (response.ok) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error(`next start did not answer within 60 s:\n${output.join("").slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 150));
  }
  return {
    url,
    proc,
    output,
    stop: async () => {
      if (exited) return;
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), 5000);
      await exit;
      clearTimeout(timer);
    },
  };
}
