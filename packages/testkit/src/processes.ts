import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Role } from "@vp/auth";
import { testAuthEnv, testToken } from "./auth";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

export type ServiceName = "gateway" | "scheduler" | "state-writer" | "executor-ffmpeg" | "executor-ai";

/**
 * A free TCP port on loopback for a server under test, chosen below Linux's ephemeral range (32768-60999). A port the
 * kernel hands out for `listen(0)` comes from that range, so between choosing it and the server binding it an
 * outgoing connection (the stack's NATS and Postgres clients open dozens) could take it as its local port:
 * `next start` then failed with EADDRINUSE in CI. Below the range only another listener can take it; each candidate
 * is checked by binding it.
 */
export async function freePort(): Promise<number> {
  for (let tries = 0; tries < 50; tries++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (await canListen(port)) return port;
  }
  throw new Error("no free TCP port found on 127.0.0.1 in 20000-31999 after 50 tries");
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolveFree) => {
    const server = createServer();
    server.once("error", () => resolveFree(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolveFree(true)));
  });
}

export interface ServiceProcess {
  name: ServiceName;
  readonly proc: ChildProcess;
  readonly pid: number;
  /** Every JSON log line the process printed (parsed), for assertions and for debugging a failure. */
  logs: Array<Record<string, unknown>>;
  /** Waits for a log line matching `predicate` (checks earlier lines too). */
  waitForLog(predicate: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  kill(signal?: NodeJS.Signals): void;
  /** Resolves with the exit code/signal once the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(): Promise<void>;
}

const READY = /(ready|listening)$/;

/**
 * Starts one service as a real process (`node --import tsx --import ./packages/telemetry/src/register.ts
 * services/<name>/src/main.ts`) with the given
 * environment and waits until it logs that it is ready.
 */
export async function startService(
  name: ServiceName,
  env: Record<string, string>,
  { readyTimeoutMs = Number(process.env.VP_SERVICE_READY_TIMEOUT_MS ?? 120_000) } = {},
): Promise<ServiceProcess> {
  // register.ts starts OpenTelemetry before main.ts's static imports load pg (as in the images' CMD).
  const proc = spawn(process.execPath, ["--import", "tsx", "--import", "./packages/telemetry/src/register.ts", `services/${name}/src/main.ts`], {
    cwd: REPO_ROOT,
    env: { ...process.env, LOG_LEVEL: "debug", HEALTH_PORT: "0", ...env, LOG_PRETTY: "0" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: Array<Record<string, unknown>> = [];
  const listeners = new Set<() => void>();
  const stderr: string[] = [];
  let buffer = "";
  proc.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    buffer += chunk;
    let newline: number;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        logs.push({ msg: line });
      }
    }
    for (const l of listeners) l();
  });
  proc.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
    stderr.push(chunk);
    if (process.env.VP_TEST_VERBOSE) process.stderr.write(`[${name}] ${chunk}`);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolveExit) =>
    proc.once("exit", (code, signal) => {
      for (const l of listeners) l();
      resolveExit({ code, signal });
    }),
  );
  let hasExited = false;
  void exited.then(() => (hasExited = true));

  const waitForLog: ServiceProcess["waitForLog"] = (predicate, timeoutMs = 30_000) =>
    new Promise((resolveLine, reject) => {
      const check = () => {
        const found = logs.find(predicate);
        if (found) {
          cleanup();
          resolveLine(found);
        } else if (hasExited) {
          cleanup();
          reject(
            new Error(`${name} exited before the expected log line; stderr: ${stderr.join("").slice(-2000)}; last logs: ${JSON.stringify(logs.slice(-5))}`),
          );
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(
          new Error(
            `${name}: expected log line not seen within ${timeoutMs} ms; stderr: ${stderr.join("").slice(-2000)}; last logs: ${JSON.stringify(logs.slice(-5))}`,
          ),
        );
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        listeners.delete(check);
      };
      listeners.add(check);
      check();
    });

  const service: ServiceProcess = {
    name,
    proc,
    pid: proc.pid!,
    logs,
    waitForLog,
    exited,
    kill: (signal = "SIGKILL") => {
      if (!hasExited) proc.kill(signal);
    },
    stop: async () => {
      if (hasExited) return;
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
  try {
    await waitForLog((line) => typeof line.msg === "string" && READY.test(line.msg), readyTimeoutMs);
  } catch (error) {
    // A service that never got ready must not outlive the test that started it.
    proc.kill("SIGKILL");
    await exited;
    throw error;
  }
  return service;
}

export interface StackOptions {
  /** Admin URL of the test database; each service derives its own role's URL from it. */
  databaseAdminUrl: string;
  namespace: string;
  storageRoot: string;
  workRoot: string;
  env?: Record<string, string>;
  /** Environment of one service only, over `env` (e.g. its NATS_USER and NATS_PASSWORD). */
  serviceEnv?: Partial<Record<ServiceName, Record<string, string>>>;
  services?: ServiceName[];
}

export interface Stack {
  baseUrl: string;
  env: Record<string, string>;
  /** The environment `start(name)` gives that service: `env` plus its own. */
  envOf(name: ServiceName): Record<string, string>;
  services: Map<ServiceName, ServiceProcess>;
  /** Starts (or restarts) one service with the stack's environment. */
  start(name: ServiceName): Promise<ServiceProcess>;
  /** A bearer token this stack's gateway accepts, with the given role(s) (default: viewer, editor and operator). */
  token(roles?: Role | Role[]): Promise<string>;
  stop(): Promise<void>;
}

/**
 * The five services as real processes against one test database and one bus namespace. The gateway checks
 * tokens signed with the testkit's key (testAuthEnv); `options.env` may override any of it.
 */
export async function startStack(options: StackOptions): Promise<Stack> {
  const port = await freePort();
  const env: Record<string, string> = {
    DATABASE_ADMIN_URL: options.databaseAdminUrl,
    BUS_NAMESPACE: options.namespace,
    STORAGE_ROOT: options.storageRoot,
    WORK_ROOT: options.workRoot,
    PORT: String(port),
    // No load balancer in front of a test stack: a stopped gateway need not keep serving while routing changes.
    SHUTDOWN_DRAIN_DELAY_MS: "0",
    ...testAuthEnv(),
    ...options.env,
  };
  const services = new Map<ServiceName, ServiceProcess>();
  // Each executor its own work root (an executor reaps what it finds in its root at start), unless the caller chose one.
  const ownWorkRoot = (name: ServiceName): Record<string, string> =>
    name.startsWith("executor-") && !options.env?.WORK_ROOT ? { WORK_ROOT: join(options.workRoot, name) } : {};
  const envOf = (name: ServiceName) => ({ ...env, ...options.serviceEnv?.[name] });
  const start = async (name: ServiceName) => {
    const service = await startService(name, { ...envOf(name), ...ownWorkRoot(name) });
    services.set(name, service);
    return service;
  };
  const names = options.services ?? ["state-writer", "scheduler", "executor-ffmpeg", "executor-ai", "gateway"];
  try {
    await Promise.all(names.map(start));
  } catch (error) {
    await Promise.all([...services.values()].map((s) => s.stop()));
    throw error;
  }
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    env,
    envOf,
    services,
    start,
    token: (roles) => testToken(roles),
    stop: async () => {
      await Promise.all([...services.values()].map((s) => s.stop()));
    },
  };
}
