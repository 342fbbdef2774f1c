/**
 * Helpers of the images test: build an image with buildah (layer cache on), read its size and config, and run
 * it with podman the way the rendered Kubernetes manifests run it (user, read-only root, writable mounts, env),
 * on the host network so it reaches the machine's NATS and PostgreSQL.
 */
import { spawn, execFile } from "node:child_process";
import { createWriteStream } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

const exec = promisify(execFile);

/** podman flags this machine needs: crun fails on its cgroup layout, and the default rlimits cannot be set. */
export const PODMAN_RUNTIME_FLAGS = ["--runtime", "runc", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"];

export interface BuildOptions {
  /** Dockerfile path relative to the context. */
  file: string;
  tag: string;
  context: string;
  buildArgs: Record<string, string>;
  /** Where buildah's output goes (kept for a failing build). */
  logFile: string;
}

/** `buildah bud --layers`: resolves with the seconds it took; rejects with the log's tail. */
export async function buildImage(options: BuildOptions): Promise<number> {
  await mkdir(join(options.logFile, ".."), { recursive: true });
  const args = ["bud", "--layers", "--network", "host", "-f", options.file, "-t", options.tag];
  for (const [k, v] of Object.entries(options.buildArgs)) args.push("--build-arg", `${k}=${v}`);
  // npm in the build trusts what the machine's npm trusts; passed as a secret, so it is in no layer.
  const ca = process.env.NODE_EXTRA_CA_CERTS;
  if (ca) args.push("--secret", `id=ca,src=${ca}`);
  args.push(options.context);
  const started = performance.now();
  const log = createWriteStream(options.logFile);
  const tail: string[] = [];
  const code = await new Promise<number | null>((resolveCode, reject) => {
    const proc = spawn("buildah", args, { stdio: ["ignore", "pipe", "pipe"] });
    const onData = (chunk: Buffer) => {
      log.write(chunk);
      tail.push(chunk.toString("utf8"));
      if (tail.length > 200) tail.shift();
    };
    proc.stdout.on("data", onData);
    proc.stderr.on("data", onData);
    proc.once("error", reject);
    proc.once("exit", (c) => resolveCode(c));
  });
  await new Promise((r) => log.end(r));
  if (code !== 0) throw new Error(`buildah bud ${options.tag} exited ${code}; log ${options.logFile}:\n${tail.join("").slice(-4000)}`);
  return (performance.now() - started) / 1000;
}

export interface ImageInfo {
  /** Bytes, as podman counts them (the uncompressed layers). */
  size: number;
  user: string;
  labels: Record<string, string>;
  entrypoint: string[] | null;
  cmd: string[] | null;
  workingDir: string;
}

export async function inspectImage(tag: string): Promise<ImageInfo> {
  const { stdout } = await exec("podman", ["image", "inspect", tag]);
  const [image] = JSON.parse(stdout) as Array<{
    Size: number;
    Config: { User?: string; Labels?: Record<string, string>; Entrypoint?: string[]; Cmd?: string[]; WorkingDir?: string };
  }>;
  return {
    size: image!.Size,
    user: image!.Config.User ?? "",
    labels: image!.Config.Labels ?? {},
    entrypoint: image!.Config.Entrypoint ?? null,
    cmd: image!.Config.Cmd ?? null,
    workingDir: image!.Config.WorkingDir ?? "",
  };
}

/** Runs `sh -c script` in the image (as its own user) and returns stdout. */
export async function shellIn(tag: string, script: string): Promise<string> {
  const { stdout } = await exec("podman", ["run", "--rm", ...PODMAN_RUNTIME_FLAGS, "--network", "none", "--entrypoint", "sh", tag, "-c", script], {
    maxBuffer: 16 * 1024 * 1024,
  });
  return stdout;
}

export interface RunOptions {
  name: string;
  image: string;
  env: Record<string, string>;
  /** "uid:gid" */
  user: string;
  readOnlyRoot: boolean;
  mounts: Array<{ source: string; target: string }>;
  dropAllCapabilities: boolean;
  noNewPrivileges: boolean;
  /** Replaces the image's CMD (a Job's `command`, which Kubernetes runs in place of the ENTRYPOINT). */
  command?: string[];
  logFile: string;
}

export interface RunningContainer {
  name: string;
  /** Parsed JSON log lines (others as { msg }). */
  logs: Array<Record<string, unknown>>;
  exited: Promise<number | null>;
  waitForLog(predicate: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Sends a signal to the container's PID 1 (tini, which forwards it to node). */
  signal(signal: "SIGTERM" | "SIGKILL"): Promise<void>;
  /** SIGKILL and removal, whatever state it is in. */
  remove(): Promise<void>;
}

/** `podman run` in the foreground (its stdout is the container's), as the manifests run the container. */
export async function runContainer(options: RunOptions): Promise<RunningContainer> {
  await mkdir(join(options.logFile, ".."), { recursive: true });
  const args = ["run", "--rm", "--name", options.name, ...PODMAN_RUNTIME_FLAGS, "--network", "host", "--user", options.user];
  // Only the declared mounts are writable (podman would otherwise add tmpfs on /tmp, /run and /var/tmp).
  if (options.readOnlyRoot) args.push("--read-only", "--read-only-tmpfs=false");
  if (options.dropAllCapabilities) args.push("--cap-drop", "ALL");
  if (options.noNewPrivileges) args.push("--security-opt", "no-new-privileges");
  for (const m of options.mounts) args.push("--mount", `type=bind,src=${m.source},dst=${m.target}`);
  for (const [k, v] of Object.entries(options.env)) args.push("--env", `${k}=${v}`);
  if (options.command) args.push("--entrypoint", JSON.stringify(options.command.slice(0, 1)));
  args.push(options.image);
  if (options.command) args.push(...options.command.slice(1));

  const log = createWriteStream(options.logFile);
  const logs: Array<Record<string, unknown>> = [];
  const listeners = new Set<() => void>();
  const proc = spawn("podman", args, { stdio: ["ignore", "pipe", "pipe"] });
  let buffer = "";
  const onLine = (line: string) => {
    try {
      logs.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      logs.push({ msg: line });
    }
  };
  proc.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    log.write(chunk);
    buffer += chunk;
    let newline: number;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      onLine(buffer.slice(0, newline));
      buffer = buffer.slice(newline + 1);
    }
    for (const l of listeners) l();
  });
  proc.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    log.write(chunk);
    for (const line of chunk.split("\n").filter(Boolean)) logs.push({ msg: line, stderr: true });
    for (const l of listeners) l();
  });
  let hasExited = false;
  const exited = new Promise<number | null>((resolveExit) =>
    proc.once("exit", (code) => {
      hasExited = true;
      log.end();
      for (const l of listeners) l();
      resolveExit(code);
    }),
  );

  const waitForLog: RunningContainer["waitForLog"] = (predicate, timeoutMs = 60_000) =>
    new Promise((resolveLine, reject) => {
      const check = () => {
        const found = logs.find(predicate);
        if (found) {
          done();
          resolveLine(found);
        } else if (hasExited) {
          done();
          reject(new Error(`${options.name} exited before the expected log line; last lines: ${JSON.stringify(logs.slice(-8))}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${options.name}: expected log line not seen within ${timeoutMs} ms; last lines: ${JSON.stringify(logs.slice(-8))}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        listeners.delete(check);
      };
      listeners.add(check);
      check();
    });

  return {
    name: options.name,
    logs,
    exited,
    waitForLog,
    signal: async (signal) => {
      await exec("podman", ["kill", "--signal", signal, options.name]).catch(() => undefined);
    },
    remove: async () => {
      if (!hasExited) await exec("podman", ["rm", "-f", "-t", "0", options.name]).catch(() => undefined);
      await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
    },
  };
}

/** When the container's process started (podman's State.StartedAt), in ms since the epoch. */
export async function containerStartedAt(name: string): Promise<number> {
  const { stdout } = await exec("podman", ["inspect", "--format", "{{.State.StartedAt.UnixMilli}}", name]);
  return Number(stdout.trim());
}

/**
 * Polls `url` until it answers 2xx; resolves with the milliseconds from the container's start (its process
 * starting, after podman created it) to that answer.
 */
export async function waitForHttpOk(url: string, container: string, timeoutMs: number, alive: () => boolean): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const ok = await fetch(url, { signal: AbortSignal.timeout(1000) })
      .then((r) => r.ok)
      .catch(() => false);
    if (ok) return Date.now() - (await containerStartedAt(container));
    if (!alive()) throw new Error(`${url}: the container exited before it was ready`);
    if (performance.now() > deadline) throw new Error(`${url} not ready within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
