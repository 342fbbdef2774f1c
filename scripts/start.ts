/**
 * `npm start`: migrate, start the five services in this terminal with readable logs, start the editor on
 * http://localhost:3065 (building it first when its sources changed), run the demo pipeline (three
 * generated clips uploaded as assets and merged), print the final MP4's path, keep serving.
 * `npm run services` (--services-only): migrate and start the services, no editor, no demo.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { generateSecret, MIN_SECRET_BYTES } from "@vp/auth";
import { DEFAULT_DATABASE_URL, migrate } from "@vp/db";
import { makeTestClip } from "@vp/media";
import { formatLogLine } from "@vp/telemetry";
import { runAiDemo } from "./demo-ai";
import { ensureWebBuild, startWeb, type WebProcess } from "./web";

const ROOT = resolve(import.meta.dirname, "..");
const servicesOnly = process.argv.includes("--services-only");
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
let authEnv: Record<string, string> = {};

const COLORS: Record<string, string> = { gateway: "36", scheduler: "35", "state-writer": "33", "executor-ffmpeg": "32", "executor-ai": "34", web: "94", demo: "97" };
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

const authorization = (): Record<string, string> => (token ? { authorization: `Bearer ${token}` } : {});

/** Signs in through the dev login, as the editor does; without it (turned off) the demo calls without a token. */
async function devLogin() {
  const response = await fetch(`http://127.0.0.1:${port}/v1/video_production/auth/dev-login`, { method: "POST" });
  if (response.ok) token = ((await response.json()) as { token: string }).token;
  else say("demo", `dev login refused (${response.status}): ${(await response.text()).slice(0, 200)}`);
}

async function streamToken(pipelineId: string): Promise<string> {
  const { token: stream } = await api<{ token: string }>("POST", `/pipelines/${pipelineId}/events/token`);
  return stream;
}

async function api<T>(method: string, path: string, body?: unknown, extra: Record<string, string> = {}): Promise<T> {
  const headers = { ...authorization(), ...extra };
  const response = await fetch(`${base}${path}`, {
    method,
    headers: body !== undefined && !(body instanceof Uint8Array) ? { "content-type": "application/json", ...headers } : headers,
    body: body === undefined ? undefined : body instanceof Uint8Array ? (body as unknown as BodyInit) : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path} -> ${response.status}: ${text}`);
  return (text ? JSON.parse(text) : {}) as T;
}

type Node = { id: string; status: string; metadata: Record<string, unknown> | null; output: Record<string, unknown> | null };

/** Follows the pipeline's SSE stream and prints each node's progress until `until` holds. */
async function follow(pipelineId: string, until: (nodes: Map<string, Node>) => boolean) {
  const nodes = new Map<string, Node>();
  const controller = new AbortController();
  const response = await fetch(`${base}/pipelines/${pipelineId}/events?token=${encodeURIComponent(await streamToken(pipelineId))}`, { signal: controller.signal });
  if (!response.ok) throw new Error(`GET events -> ${response.status}: ${await response.text()}`);
  const decoder = new TextDecoder();
  let buffer = "";
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  for (;;) {
    const { value: chunk, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(chunk, { stream: true });
    let i: number;
    while ((i = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, i);
      buffer = buffer.slice(i + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
      if (!data) continue;
      const payload = JSON.parse(data);
      if (event === "snapshot") for (const n of payload.pipeline.nodes as Node[]) nodes.set(n.id, n);
      if (event === "node") {
        nodes.set(payload.nodeId, { id: payload.nodeId, status: payload.status, metadata: payload.metadata, output: payload.output });
        const progress = payload.metadata?.progress;
        say("demo", `${payload.nodeId.padEnd(10)} ${payload.status}${payload.status === "in_progress" && progress !== undefined ? ` ${progress}%` : ""}${payload.metadata?.error ? `: ${payload.metadata.error}` : ""}`);
      }
      if (until(nodes)) {
        await reader.cancel().catch(() => undefined);
        controller.abort();
        return nodes;
      }
    }
  }
  return nodes;
}

async function demo() {
  await devLogin();
  const work = await mkdtemp(join(tmpdir(), "vp-demo-"));
  try {
    const clips = [
      { id: "intro", title: "Intro", durationSeconds: 2, width: 640, height: 360 },
      { id: "middle", title: "Middle", durationSeconds: 1.5, width: 640, height: 360 },
      { id: "outro", title: "Outro (smaller)", durationSeconds: 3, width: 480, height: 270 },
    ];
    const { pipeline } = await api<{ pipeline: { id: string } }>("POST", "/pipelines", { title: `Demo ${new Date().toISOString()}` });
    say("demo", `pipeline ${pipeline.id}`);
    say("demo", `watch it in the editor: ${editorUrl}/pipelines/${pipeline.id}`);
    for (const [index, clip] of clips.entries()) {
      const path = join(work, `${clip.id}.mp4`);
      await makeTestClip({ path, durationSeconds: clip.durationSeconds, width: clip.width, height: clip.height, fps: 30, audio: true });
      await api("POST", `/pipelines/${pipeline.id}/nodes`, { id: clip.id, title: clip.title, type: "asset", asset: { type: "video" }, position: { x: 0, y: index * 290 } });
      await api("PUT", `/pipelines/${pipeline.id}/nodes/${clip.id}/asset`, new Uint8Array(await readFile(path)), { "content-type": "video/mp4" });
      say("demo", `uploaded ${clip.id} (${clip.durationSeconds}s, ${clip.width}x${clip.height})`);
    }
    await api("POST", `/pipelines/${pipeline.id}/nodes`, {
      id: "merged",
      title: "Final cut",
      type: "merge-videos",
      inputs: { segments: clips.map((c) => c.id) },
      position: { x: 380, y: 290 },
    });

    const done = (ids: string[]) => (nodes: Map<string, Node>) => ids.every((id) => ["completed", "failed"].includes(nodes.get(id)?.status ?? ""));
    const assetsDone = follow(pipeline.id, done(clips.map((c) => c.id)));
    for (const clip of clips) await api("POST", `/pipelines/${pipeline.id}/nodes/${clip.id}/execute`);
    await assetsDone;
    const mergeDone = follow(pipeline.id, done(["merged"]));
    const { job_id } = await api<{ job_id: string }>("POST", `/pipelines/${pipeline.id}/nodes/merged/execute`);
    say("demo", `merge queued as job ${job_id}`);
    const nodes = await mergeDone;
    const merged = nodes.get("merged")!;
    if (merged.status !== "completed") throw new Error(`merge ${merged.status}: ${String(merged.metadata?.error)}`);
    const output = merged.output as { s3Key: string; duration: number; size: number };
    say("demo", `done: ${output.duration.toFixed(2)} s, ${output.size} bytes, cost $${String(merged.metadata?.cost)}`);
    say("demo", `final MP4: ${join(storageRoot, output.s3Key)}`);
    say("demo", `stream it:  TOKEN=$(curl -s -X POST http://127.0.0.1:${port}/v1/video_production/auth/dev-login | jq -r .token)`);
    say("demo", `            curl -H "authorization: Bearer $TOKEN" -o merged.mp4 ${base}/pipelines/${pipeline.id}/nodes/merged/output`);
    // The AI part on local providers (espeak-ng voice, presenter card, prompt animation): no API keys needed.
    say("demo", "AI nodes on local providers: script -> voiceover, talking head, animation");
    await runAiDemo({ apiRoot: base, token, pipelineId: pipeline.id, origin: { x: 0, y: 900 }, log: (line) => say("demo", line) });
    if (web) say("demo", `open it in the editor: ${editorUrl}/pipelines/${pipeline.id}`);
    say("demo", "services keep running; press Ctrl+C to stop");
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function main() {
  say("demo", `migrating ${adminUrl.replace(/:[^:@/]*@/, ":***@")}`);
  await migrate({ adminUrl, log: (msg: string) => say("demo", msg) });
  authEnv = await localAuthEnv();
  await mkdir(storageRoot, { recursive: true });
  // The editor builds (only when its sources changed) while the services start.
  const build = servicesOnly ? undefined : ensureWebBuild((line) => say("web", line));
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
  try {
    await build;
    web = await startWeb({ port: webPort, gatewayUrl: `http://localhost:${port}`, onLine: (line) => say("web", line.trim()) });
    say("web", `editor on ${editorUrl}`);
  } catch (error) {
    say("web", `the editor did not start: ${error instanceof Error ? error.message : String(error)}`);
  }
  await demo();
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
