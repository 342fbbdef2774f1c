/**
 * `npm start`: migrate, start the five services in this terminal with readable logs, start the editor on
 * http://localhost:3065 (building it first when its sources changed), run the demo pipeline (scripts/demo.ts:
 * every node type, each output checked and printed on one line), print the final MP4's path, keep serving.
 * `npm run services` (--services-only): migrate and start the services, no editor, no demo.
 * --no-editor: no editor (no build, no `next start`). --exit-after-demo: stop the services and exit once the demo
 * is done, 0 when it passed (tests/e2e/npm-start.test.ts runs `npm start` so, on its own defaults).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { generateSecret, MIN_SECRET_BYTES } from "@vp/auth";
import { DEFAULT_DATABASE_URL, migrate } from "@vp/db";
import { formatLogLine } from "@vp/telemetry";
import { runDemo } from "./demo";
import { ensureWebBuild, startWeb, type WebProcess } from "./web";

const ROOT = resolve(import.meta.dirname, "..");
const servicesOnly = process.argv.includes("--services-only");
const noEditor = process.argv.includes("--no-editor");
const exitAfterDemo = process.argv.includes("--exit-after-demo");
const adminUrl = process.env.DATABASE_ADMIN_URL ?? DEFAULT_DATABASE_URL;
const port = Number(process.env.PORT ?? 3061);
const base = `http://127.0.0.1:${port}/v1/video_production`;
const storageRoot = resolve(ROOT, process.env.STORAGE_ROOT ?? ".data/storage");
const webPort = Number(process.env.WEB_PORT ?? 3065);
const editorUrl = `http://localhost:${webPort}`;
// The browser calls the gateway directly; allow the editor's origin whichever host name it is opened with.
const corsOrigins = process.env.CORS_ORIGINS ?? `http://localhost:${webPort},http://127.0.0.1:${webPort}`;
let web: WebProcess | undefined;
/** The demo's bearer token, from the dev login (what the editor does too). */
let token: string | undefined;

/**
 * Local auth with nothing to set up: a secret generated once under .data/ (ignored by git, kept across
 * restarts so tokens stay valid) and the dev login the editor signs in with. AUTH_SECRET in the environment
 * wins; AUTH_MODE=off turns auth off (the gateway says so loudly).
 */
async function localAuthEnv(): Promise<Record<string, string>> {
  const env: Record<string, string> = { AUTH_DEV_LOGIN: process.env.AUTH_DEV_LOGIN ?? "1" };
  if (process.env.AUTH_SECRET) return env;
  const file = resolve(ROOT, ".data/auth-secret");
  let secret = (await readFile(file, "utf8").catch(() => "")).trim();
  if (Buffer.byteLength(secret) < MIN_SECRET_BYTES) {
    secret = generateSecret();
    await mkdir(resolve(ROOT, ".data"), { recursive: true });
    await writeFile(file, `${secret}\n`, { mode: 0o600 });
    await chmod(file, 0o600);
    say("demo", "generated a local auth secret in .data/auth-secret (the dev login signs tokens with it)");
  }
  return { ...env, AUTH_SECRET: secret };
}

/**
 * The key webhook signing secrets are encrypted with, generated once under .data/ like the auth secret (kept across
 * restarts: endpoints made with it stay usable). WEBHOOK_SECRET_KEY in the environment wins.
 */
async function localWebhookKeyEnv(): Promise<Record<string, string>> {
  if (process.env.WEBHOOK_SECRET_KEY) return {};
  const file = resolve(ROOT, ".data/webhook-secret-key");
  let key = (await readFile(file, "utf8").catch(() => "")).trim();
  if (Buffer.from(key, "base64").length !== 32) {
    key = randomBytes(32).toString("base64");
    await mkdir(resolve(ROOT, ".data"), { recursive: true });
    await writeFile(file, `${key}\n`, { mode: 0o600 });
    await chmod(file, 0o600);
    say("demo", "generated a local webhook key in .data/webhook-secret-key (it encrypts webhook signing secrets)");
  }
  return { WEBHOOK_SECRET_KEY: key };
}

let authEnv: Record<string, string> = {};

const COLORS: Record<string, string> = {
  gateway: "36",
  scheduler: "35",
  "state-writer": "33",
  "executor-ffmpeg": "32",
  "executor-ai": "34",
  web: "94",
  demo: "97",
};
const say = (name: string, text: string) => console.log(`\x1b[${COLORS[name] ?? "0"}m${name.padEnd(15)}\x1b[0m ${text}`);

/** One readable line per JSON log line, every value escaped and capped (a logged value cannot forge a line). */
const formatLog = formatLogLine;

const children: ChildProcess[] = [];
function startService(name: string, readyPattern: RegExp): Promise<void> {
  return new Promise((resolveReady, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "--import", "./packages/telemetry/src/register.ts", `services/${name}/src/main.ts`], {
      cwd: ROOT,
      env: { ...process.env, ...authEnv, DATABASE_ADMIN_URL: adminUrl, STORAGE_ROOT: storageRoot, PORT: String(port), CORS_ORIGINS: corsOrigins },
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.push(child);
    let buffer = "";
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      buffer += chunk;
      let i: number;
      while ((i = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, i);
        buffer = buffer.slice(i + 1);
        const text = formatLog(line);
        say(name, text);
        if (readyPattern.test(text)) resolveReady();
      }
    });
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => say(name, chunk.trimEnd()));
    child.once("exit", (code, signal) => {
      say(name, `exited (${signal ?? code})`);
      reject(new Error(`${name} exited before it was ready`));
    });
  });
}

/** Signs in through the dev login, as the editor does; without it (turned off) the demo calls without a token. */
async function devLogin() {
  const response = await fetch(`http://127.0.0.1:${port}/v1/video_production/auth/dev-login`, { method: "POST" });
  if (response.ok) token = ((await response.json()) as { token: string }).token;
  else say("demo", `dev login refused (${response.status}): ${(await response.text()).slice(0, 200)}`);
}

async function demo() {
  await devLogin();
  const { pipelineId, finalKey, lines } = await runDemo({
    apiRoot: base,
    token,
    log: (line) => say("demo", line),
    onPipeline: (id) => {
      if (!noEditor) say("demo", `watch it in the editor: ${editorUrl}/pipelines/${id}`);
    },
  });
  say("demo", `all ${lines.length} nodes completed, every output checked`);
  say("demo", `final MP4: ${join(storageRoot, finalKey)}`);
  if (!exitAfterDemo) {
    say("demo", `stream it:  TOKEN=$(curl -s -X POST http://127.0.0.1:${port}/v1/video_production/auth/dev-login | jq -r .token)`);
    say("demo", `            curl -H "authorization: Bearer $TOKEN" -o final.mp4 ${base}/pipelines/${pipelineId}/nodes/final/output`);
  }
  if (web) say("demo", `open it in the editor: ${editorUrl}/pipelines/${pipelineId}`);
}

/** Stops the editor and the services (SIGTERM: each finishes or hands back its work), waits for them, exits. */
async function shutdown(code: number): Promise<never> {
  const running = children.filter((child) => child.exitCode === null && child.signalCode === null);
  const exited = Promise.all(running.map((child) => new Promise((resolveExit) => child.once("exit", resolveExit))));
  for (const child of running) child.kill("SIGTERM");
  await Promise.all([web?.stop(), Promise.race([exited, new Promise((resolveWait) => setTimeout(resolveWait, 30_000).unref())])]);
  process.exit(code);
}

async function main() {
  say("demo", `migrating ${adminUrl.replace(/:[^:@/]*@/, ":***@")}`);
  await migrate({ adminUrl, log: (msg: string) => say("demo", msg) });
  authEnv = { ...(await localAuthEnv()), ...(await localWebhookKeyEnv()) };
  await mkdir(storageRoot, { recursive: true });
  // The editor builds (only when its sources changed) while the services start.
  const build = servicesOnly || noEditor ? undefined : ensureWebBuild((line) => say("web", line));
  build?.catch(() => undefined);
  await Promise.all([
    startService("state-writer", /ready/),
    startService("scheduler", /ready/),
    startService("executor-ffmpeg", /ready/),
    startService("executor-ai", /ready/),
  ]);
  await startService("gateway", /listening/);
  say("demo", `API on http://127.0.0.1:${port}`);
  if (servicesOnly) return;
  if (!noEditor) {
    try {
      await build;
      web = await startWeb({ port: webPort, gatewayUrl: `http://localhost:${port}`, onLine: (line) => say("web", line.trim()) });
      say("web", `editor on ${editorUrl}`);
    } catch (error) {
      say("web", `the editor did not start: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  await demo();
  if (exitAfterDemo) {
    say("demo", "the demo passed; stopping the services (--exit-after-demo)");
    await shutdown(0);
  }
  say("demo", "services keep running; press Ctrl+C to stop");
}

const stop = () => {
  for (const child of children) child.kill("SIGTERM");
  void web?.stop();
  setTimeout(() => process.exit(0), 3000).unref();
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);

main().catch((error: unknown) => {
  say("demo", `failed: ${error instanceof Error ? error.message : String(error)}`);
  for (const child of children) child.kill("SIGTERM");
  void web?.stop();
  process.exitCode = 1;
  setTimeout(() => process.exit(1), 3000).unref();
});
