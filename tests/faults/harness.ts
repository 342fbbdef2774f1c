/**
 * The fault suite's own infrastructure: faults are injected only into servers and processes the
 * suite starts itself — its own nats-server (JetStream on file storage) and its own PostgreSQL cluster, on
 * free ports, from the binaries on the machine — never into the machine's shared services. The nats-server
 * runs with the production authorization: each service connects as its own user with the permissions of
 * @vp/bus busPermissions(), and a client without credentials is refused.
 *
 *   const infra = await startFaultInfra("faults-1");   // own nats-server + own Postgres cluster
 *   const fx = await infra.stack({ jobAckWaitMs: 3000 }); // migrated database, topology, the five services
 *   await infra.nats.restart(); await infra.postgres.stop(); ...
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { BUS_SERVICES, busPermissions, connectBus, ensureTopology, natsAuthorizationConfig, type Bus, type NatsUser } from "@vp/bus";
import { connect as connectNats } from "@nats-io/transport-node";
import { createTopology, type Topology } from "@vp/contracts";
import { migrate } from "@vp/db";
import { createLogger } from "@vp/telemetry";
import { startService, startStack, type ServiceName, type ServiceProcess, type Stack } from "@vp/testkit";
import { client, type Client } from "../e2e/helpers";

const exec = promisify(execFile);

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${what} not ready within ${timeoutMs} ms`);
    await sleep(100);
  }
}

async function tcpOpen(port: number): Promise<boolean> {
  const { connect } = await import("node:net");
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

export interface NatsCredentials {
  user: string;
  pass: string;
}

export interface OwnNats {
  url: string;
  port: number;
  /** A user with every permission (the tests' own connections); the services get users of their own. */
  admin: NatsCredentials;
  /** Rewrites the server's users (the admin plus `users`) and reloads the config (SIGHUP), as an operator rotates them. */
  setUsers(users: NatsUser[]): Promise<void>;
  /** SIGKILL (default) or SIGTERM the server; JetStream's file store survives. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  start(): Promise<void>;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** A nats-server of our own on a free port: JetStream on file storage, users from natsAuthorizationConfig(). */
export async function startOwnNats(dir: string): Promise<OwnNats> {
  const port = await freePort();
  const storeDir = join(dir, "jetstream");
  await mkdir(storeDir, { recursive: true });
  const configFile = join(dir, "nats.conf");
  const admin: NatsCredentials = { user: "admin", pass: randomBytes(16).toString("hex") };
  const writeConfig = (users: NatsUser[]) =>
    writeFile(
      configFile,
      `listen: "127.0.0.1:${port}"
jetstream { store_dir: ${JSON.stringify(storeDir)} }
` + natsAuthorizationConfig([{ user: admin.user, password: { literal: admin.pass } }, ...users]),
    );
  await writeConfig([]);
  let proc: ChildProcess | undefined;
  const start = async () => {
    proc = spawn("/usr/sbin/nats-server", ["-c", configFile], { stdio: "ignore" });
    await waitUntil(`nats-server on ${port}`, () => tcpOpen(port));
  };
  const kill = async (signal: NodeJS.Signals = "SIGKILL") => {
    const p = proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise<void>((r) => p.once("exit", () => r()));
    p.kill(signal);
    await exited;
  };
  await start();
  const url = `nats://127.0.0.1:${port}`;
  return {
    url,
    port,
    admin,
    setUsers: async (users) => {
      await writeConfig(users);
      proc?.kill("SIGHUP");
      // The reload is done once the last new user can connect.
      const last = users.at(-1);
      if (!last || !("literal" in last.password)) return;
      const probe = { user: last.user, pass: last.password.literal };
      await waitUntil("nats-server config reload", async () => {
        const nc = await connectNats({ servers: url, name: "reload-probe", ...probe });
        await nc.close();
        return true;
      });
    },
    kill,
    start,
    restart: async () => {
      await kill("SIGKILL");
      await start();
    },
    stop: () => kill("SIGTERM"),
  };
}

export interface OwnPostgres {
  /** Superuser URL of database `db` on this cluster. */
  url(db: string): string;
  port: number;
  /** pg_ctl stop: "immediate" is a crash (no checkpoint), "fast" a clean stop. */
  stop(mode?: "immediate" | "fast"): Promise<void>;
  start(): Promise<void>;
  /** Removes the cluster. */
  destroy(): Promise<void>;
}

/**
 * A PostgreSQL cluster of our own (initdb + pg_ctl from the machine's binaries) on a free port, trust auth,
 * socket in its own directory. Postgres refuses to run as root, so as root it runs as the `postgres` user.
 */
export async function startOwnPostgres(dir: string): Promise<OwnPostgres> {
  const port = await freePort();
  const data = join(dir, "pgdata");
  const asRoot = process.getuid?.() === 0;
  const run = async (cmd: string, args: string[]) => {
    const [file, argv] = asRoot ? ["runuser", ["-u", "postgres", "--", cmd, ...args]] : [cmd, args];
    return exec(file, argv, { maxBuffer: 8 * 1024 * 1024 });
  };
  await mkdir(data, { recursive: true });
  if (asRoot) {
    const { uid, gid } = await exec("id", ["-u", "postgres"]).then(async (u) => ({
      uid: Number(u.stdout.trim()),
      gid: Number((await exec("id", ["-g", "postgres"])).stdout.trim()),
    }));
    await chown(dir, uid, gid);
    await chown(data, uid, gid);
  }
  await chmod(data, 0o700);
  await run("initdb", ["-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"]);
  const start = async () => {
    await run("pg_ctl", [
      "-D",
      data,
      "-l",
      join(data, "server.log"),
      "-w",
      "-t",
      "60",
      "-o",
      `-p ${port} -k ${data} -c listen_addresses=127.0.0.1 -c max_connections=200`,
      "start",
    ]);
  };
  await start();
  return {
    url: (db) => `postgres://postgres@127.0.0.1:${port}/${db}`,
    port,
    stop: async (mode = "immediate") => {
      await run("pg_ctl", ["-D", data, "-m", mode, "-w", "stop"]);
    },
    start,
    destroy: async () => {
      await run("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"]).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface FaultStack {
  stack: Stack;
  api: Client;
  /** The harness's own connection, as the server's admin user. */
  bus: Bus;
  topology: Topology;
  /** Each service's NATS user and password on the stack's server. */
  credentials: Record<ServiceName, NatsCredentials>;
  adminUrl: string;
  scratch: string;
  /**
   * Another process of a service with the stack's environment plus `env` (a second replica), stopped with the
   * stack. It gets a WORK_ROOT of its own unless `env` names one: an executor reaps everything under its WORK_ROOT
   * when it starts, so two live executors must never share one.
   */
  replica(name: ServiceName, env?: Record<string, string>): Promise<ServiceProcess>;
  /** Every process of the service this stack ever ran (first start, restarts through stack.start, replicas), in start order. */
  processesOf(name: ServiceName): ServiceProcess[];
  /** Every log line of every process of the service (restarts and replicas included). */
  logsOf(name: ServiceName): Array<Record<string, unknown>>;
  /** Every "NATS permission denied" any process of the stack logged: a publish or subscribe its user may not make. */
  permissionDenials(): Array<Record<string, unknown>>;
  stop(): Promise<void>;
}

export interface FaultInfra {
  dir: string;
  nats: OwnNats;
  postgres: OwnPostgres;
  /** A migrated database on our cluster, a topology on our nats-server, and the services as processes. */
  stack(options: { jobAckWaitMs: number; env?: Record<string, string>; services?: ServiceName[] }): Promise<FaultStack>;
  destroy(): Promise<void>;
}

let stacks = 0;

export async function startFaultInfra(prefix: string): Promise<FaultInfra> {
  const dir = await mkdtemp(join(tmpdir(), `vp-${prefix}-`));
  await chmod(dir, 0o755);
  const nats = await startOwnNats(join(dir, "nats"));
  const pgDir = join(dir, "pg");
  await mkdir(pgDir);
  const postgres = await startOwnPostgres(pgDir);
  const logger = createLogger({ service: "faults", level: process.env.LOG_LEVEL ?? "warn" });
  const open: FaultStack[] = [];
  const serviceUsers: NatsUser[] = [];
  return {
    dir,
    nats,
    postgres,
    async stack({ jobAckWaitMs, env, services }) {
      const n = ++stacks;
      const adminUrl = postgres.url(`vp_faults_${n}`);
      await migrate({ adminUrl });
      const topology = createTopology({ namespace: `f${n}`, jobAckWaitMs });
      // Each service its own user and permissions, for this stack's namespace.
      const credentials = Object.fromEntries(
        BUS_SERVICES.map((service) => [service, { user: `${topology.namespace}-${service}`, pass: randomBytes(16).toString("hex") }]),
      ) as Record<ServiceName, NatsCredentials>;
      serviceUsers.push(
        ...BUS_SERVICES.map((service) => ({
          user: credentials[service].user,
          password: { literal: credentials[service].pass },
          permissions: busPermissions(service, topology),
        })),
      );
      await nats.setUsers(serviceUsers);
      const bus = await connectBus({ servers: nats.url, name: `faults-${n}`, logger, ...nats.admin });
      await ensureTopology(bus, topology);
      const scratch = join(dir, `stack-${n}`);
      const stack = await startStack({
        databaseAdminUrl: adminUrl,
        namespace: topology.namespace,
        storageRoot: join(scratch, "storage"),
        workRoot: join(scratch, "work"),
        env: { NATS_URL: nats.url, JOB_ACK_WAIT_MS: String(jobAckWaitMs), ...env },
        serviceEnv: Object.fromEntries(BUS_SERVICES.map((s) => [s, { NATS_USER: credentials[s].user, NATS_PASSWORD: credentials[s].pass }])),
        services,
      });
      const started: ServiceProcess[] = [...stack.services.values()];
      const replicas: ServiceProcess[] = [];
      let replicaCount = 0;
      const startOne = stack.start;
      stack.start = async (name) => {
        const service = await startOne(name);
        started.push(service);
        return service;
      };
      const processesOf = (name: ServiceName) => started.filter((p) => p.name === name);
      const fx: FaultStack = {
        stack,
        api: client(stack.baseUrl),
        bus,
        topology,
        credentials,
        adminUrl,
        scratch,
        replica: async (name, env = {}) => {
          const workRoot = join(scratch, `work-replica-${++replicaCount}`);
          const service = await startService(name, { ...stack.envOf(name), HEALTH_PORT: "0", WORK_ROOT: workRoot, ...env });
          started.push(service);
          replicas.push(service);
          return service;
        },
        processesOf,
        logsOf: (name) => processesOf(name).flatMap((p) => p.logs),
        permissionDenials: () => started.flatMap((p) => p.logs.filter((l) => l.msg === "NATS permission denied").map((l) => ({ service: p.name, ...l }))),
        stop: async () => {
          await Promise.all(replicas.map((r) => r.stop()));
          await stack.stop();
          await bus.close().catch(() => undefined);
        },
      };
      open.push(fx);
      return fx;
    },
    async destroy() {
      // Every scenario doubles as a check of the users' permissions: a refused publish or subscribe fails the file.
      const denials = open.flatMap((fx) => fx.permissionDenials());
      for (const fx of open) await fx.stop().catch(() => undefined);
      await nats.kill("SIGKILL").catch(() => undefined);
      await postgres.destroy().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
      if (denials.length)
        throw new Error(
          `NATS refused ${denials.length} publish/subscribe(s) of the services (packages/bus/src/permissions.ts): ${JSON.stringify(denials.slice(0, 5))}`,
        );
    },
  };
}

/**
 * Exactly-once bookkeeping every scenario ends with: each accepted command ran exactly once (one "work started"
 * per job across every executor process that ever ran, one completed node per accepted id) and no paid
 * provider job was created twice.
 */
export function workStartsByJob(logs: Array<Record<string, unknown>>): Map<string, number> {
  const starts = new Map<string, number>();
  for (const line of logs) {
    if (line.msg === "work started" && typeof line.jobId === "string") starts.set(line.jobId, (starts.get(line.jobId) ?? 0) + 1);
  }
  return starts;
}

/** A talking head on HeyGen (the fake's avatar and voice), for scenarios that pay a provider. */
export const HEYGEN_TALKING_HEAD = { provider: "heygen", avatarId: "Daisy-inskirt-20220818", voiceId: "2d5b0e6cf36f460aa7fc47e3eee4ba54" };

/** Resolves with `check`'s first truthy value, polling every 20 ms; fails naming `what` after timeoutMs. */
export async function until<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(20);
  }
}
