/**
 * `npm start` exactly as a developer runs it, on its own defaults: `npm start` in a fresh copy of the repository,
 * so every path setting keeps its relative default (`.data/storage`, `.data/work/<executor>` under that copy), the
 * auth secret is generated under its `.data/` and the demo signs in through the dev login. Only what would collide
 * with a developer's running `npm start` or with the rest of the suite is set: its own database, its own bus
 * namespace, and ports (the gateway's on a free port, the health ports on any). `--exit-after-demo` ends it once
 * the demo pipeline (every node type) ran; each output is then checked again here, from the database and the files.
 */
import { spawn, execFile, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { cp, mkdir, mkdtemp, readdir, readlink, rm, stat, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NODE_TYPES } from "@vp/contracts";
import { withDatabase } from "@vp/db";
import { createTestBus, dropDatabase, freePort, REPO_ROOT, RUN_ID_ENV, TEST_DB_PREFIX, testNatsUrl, testServerUrl } from "@vp/testkit";
import { ffprobeDuration } from "./helpers";

const exec = promisify(execFile);

/** The whole demo on two shared cores: bundling and rendering the code animation dominates. */
const DEMO_TIMEOUT_MS = 15 * 60_000;

let checkout: string;
let database: string;
let namespace: string;
let proc: ChildProcess | undefined;

/**
 * A copy of the repository's files (tracked and new, as git lists them) with a node_modules of links into the
 * repository's, except the workspace packages, which link to the copy's own: the services run from the copy, with
 * the copy as their working directory.
 */
async function makeCheckout(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "vp-npm-start-"));
  const { stdout } = await exec("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], { cwd: REPO_ROOT, maxBuffer: 64 * 1024 * 1024 });
  for (const file of new Set(stdout.split("\0").filter(Boolean))) {
    const from = join(REPO_ROOT, file);
    const info = await stat(from).catch(() => undefined);
    if (!info?.isFile()) continue; // deleted in the work tree
    await mkdir(dirname(join(dir, file)), { recursive: true });
    await cp(from, join(dir, file), { preserveTimestamps: true });
  }
  const modules = join(REPO_ROOT, "node_modules");
  await mkdir(join(dir, "node_modules/@vp"), { recursive: true });
  for (const entry of await readdir(modules)) {
    if (entry !== "@vp") await symlink(join(modules, entry), join(dir, "node_modules", entry));
  }
  for (const entry of await readdir(join(modules, "@vp"))) {
    // ../../packages/<name>: relative, so it resolves inside the copy.
    await symlink(await readlink(join(modules, "@vp", entry)), join(dir, "node_modules/@vp", entry));
  }
  return dir;
}

/** What a developer's shell would carry, and nothing of the test harness (no VP_*, no test template, no auth key). */
function shellEnv(): Record<string, string> {
  const keep = ["PATH", "HOME", "USER", "LANG", "LC_ALL", "TMPDIR", "TERM"];
  const env: Record<string, string> = {};
  for (const key of keep) if (process.env[key] !== undefined) env[key] = process.env[key]!;
  // NATS credentials, where the machine's nats-server has users.
  for (const [key, value] of Object.entries(process.env)) if (key.startsWith("NATS_") && value !== undefined) env[key] = value;
  return env;
}

beforeAll(async () => {
  checkout = await makeCheckout();
  database = `${TEST_DB_PREFIX}${process.env[RUN_ID_ENV] ?? process.pid}_${randomBytes(5).toString("hex")}`;
  namespace = `t${randomBytes(4).toString("hex")}`;
}, 120_000);

afterAll(async () => {
  if (proc?.pid !== undefined && proc.exitCode === null && proc.signalCode === null) {
    // npm, start.ts and the services it started: one process group.
    try {
      process.kill(-proc.pid, "SIGKILL");
    } catch {
      /* already gone */
    }
  }
  await dropDatabase(database).catch(() => undefined);
  const bus = await createTestBus({ namespace, ensure: false });
  await bus.cleanup();
  if (checkout) await rm(checkout, { recursive: true, force: true });
}, 60_000);

describe("npm start on its own defaults", () => {
  it(
    "runs the demo pipeline of every node type from relative .data/ paths, checks and prints each output, and exits 0",
    async () => {
      const port = await freePort();
      proc = spawn("npm", ["start", "--", "--exit-after-demo", "--no-editor"], {
        cwd: checkout,
        env: {
          ...shellEnv(),
          DATABASE_ADMIN_URL: withDatabase(testServerUrl(), database),
          NATS_URL: testNatsUrl(),
          BUS_NAMESPACE: namespace,
          PORT: String(port),
          HEALTH_PORT: "0",
          npm_config_update_notifier: "false",
        },
        detached: true,
        stdio: ["ignore", "pipe", "pipe"],
      });
      let out = "";
      proc.stdout!.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
      proc.stderr!.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
      const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolveExit) => {
        const timer = setTimeout(() => {
          if (proc?.pid) process.kill(-proc.pid, "SIGKILL");
        }, DEMO_TIMEOUT_MS);
        proc!.once("exit", (code, signal) => {
          clearTimeout(timer);
          resolveExit({ code, signal });
        });
      });
      // eslint-disable-next-line no-control-regex
      const lines = out.replace(/\x1b\[[0-9;]*m/g, "").split("\n");
      const demo = lines.filter((l) => l.startsWith("demo ")).map((l) => l.slice(16));
      // What to read when it fails: the demo's own lines and the services' errors (not every request log).
      const tail = [...demo.slice(-40), ...lines.filter((l) => /\b(ERROR|FATAL)\b/.test(l)).slice(-10)].join("\n");
      expect(exit, tail).toEqual({ code: 0, signal: null });

      // One line per node, each checked by the demo itself: "ok   <id> <type> <duration> <size> bytes".
      const pipelineId = /^pipeline (\S+): 14 nodes, every node type$/.exec(demo.find((l) => l.startsWith("pipeline ")) ?? "")?.[1];
      expect(pipelineId, tail).toBeDefined();
      const nodeLines = demo.filter((l) => /^(ok {2}|FAIL) /.test(l));
      expect(nodeLines, tail).toHaveLength(14);
      for (const line of nodeLines) expect(line, tail).toMatch(/^ok {3}\S+\s+\S.*\s(-|\d+\.\d\d s)\s+\d+ bytes/);
      const storage = join(checkout, ".data/storage");
      const finalLine = demo.find((l) => l.startsWith("final MP4: "));
      expect(finalLine, tail).toBeDefined();
      const finalPath = finalLine!.slice("final MP4: ".length);
      expect(finalPath.startsWith(`${storage}/pipelines/${pipelineId}/nodes/captioned/`), finalPath).toBe(true);

      // The defaults were in force: the executors worked under the copy's .data/work (the code animation's
      // bundle, which needs an absolute output path, lives there).
      expect((await stat(join(checkout, ".data/work/executor-ffmpeg/_code-animation"))).isDirectory()).toBe(true);
      expect((await stat(join(checkout, ".data/work/executor-ai"))).isDirectory()).toBe(true);
      expect((await stat(join(checkout, ".data/auth-secret"))).isFile()).toBe(true);

      // Every node type ran and completed; every output file is where its key says, as large as recorded, and the
      // media play as long as recorded.
      const client = new pg.Client({ connectionString: withDatabase(testServerUrl(), database) });
      await client.connect();
      let rows: Array<{ id: string; type: string; status: string; output: { type: string; s3Key: string; size: number; duration?: number } }>;
      try {
        ({ rows } = await client.query("SELECT id, type, status, output FROM video_production_nodes WHERE pipeline_id = $1 ORDER BY id", [pipelineId]));
      } finally {
        await client.end();
      }
      expect(new Set(rows.map((r) => r.type))).toEqual(new Set(NODE_TYPES));
      expect(new Set(rows.filter((r) => r.type === "asset").map((r) => r.output.type))).toEqual(new Set(["text", "image", "video", "audio"]));
      for (const row of rows) {
        expect(row.status, row.id).toBe("completed");
        const file = resolve(storage, row.output.s3Key);
        expect(file.startsWith(`${storage}/`), file).toBe(true);
        expect((await stat(file)).size, row.id).toBe(row.output.size);
        if (row.output.type === "video" || row.output.type === "audio") {
          expect(Math.abs((await ffprobeDuration(file)) - row.output.duration!), row.id).toBeLessThan(0.1);
        }
      }
      // The final composite decodes end to end.
      await exec("ffmpeg", ["-v", "error", "-i", finalPath, "-f", "null", "-"]);
    },
    DEMO_TIMEOUT_MS + 60_000,
  );
});
