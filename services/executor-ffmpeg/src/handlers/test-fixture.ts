import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NodeOutput, NodeType, SerializedNode } from "@vp/contracts";
import { makeTestClip, type TestClipOptions } from "@vp/media";
import { createLocalStorage, type Storage } from "@vp/storage";
import { createLogger } from "@vp/telemetry";
import type { WorkContext } from "./types";

/**
 * What a handler test needs around a work function: a temp directory with real local storage, and a
 * WorkContext built by hand the way the job runner builds it.
 */
export const PIPELINE = "p1";

export interface HandlerFixture {
  dir: string;
  storage: Storage;
  node(id: string, type: NodeType, fields?: Partial<SerializedNode>): SerializedNode;
  completedVideo(id: string, s3Key: string): SerializedNode;
  /** A completed node whose output describes a stored file the way the asset work would (probed fields included). */
  completed(id: string, output: NodeOutput): SerializedNode;
  context(
    target: SerializedNode,
    inputs?: Record<string, SerializedNode[]>,
    signal?: AbortSignal,
  ): Promise<{ ctx: WorkContext; progress: number[]; jobId: string }>;
  /** A real clip (lavfi) stored under `key`. */
  storeClip(key: string, opts: Omit<TestClipOptions, "path">): Promise<string>;
  cleanup(): Promise<void>;
}

export async function createHandlerFixture(options: { storage?: Storage } = {}): Promise<HandlerFixture> {
  const dir = await mkdtemp(join(tmpdir(), "vp-exec-ffmpeg-"));
  const storage = options.storage ?? createLocalStorage({ root: join(dir, "storage") });
  const logger = createLogger({ service: "executor-ffmpeg-test", level: "silent" });
  let jobs = 0;
  let clips = 0;
  const node: HandlerFixture["node"] = (id, type, fields = {}) => ({
    id,
    pipeline_id: PIPELINE,
    title: id,
    type,
    inputs: {},
    config: {},
    asset: null,
    status: "pending",
    metadata: null,
    output: null,
    ...fields,
  });
  return {
    dir,
    storage,
    node,
    completedVideo: (id, s3Key) => node(id, "asset", { status: "completed", output: { type: "video", s3Key, contentType: "video/mp4" } }),
    completed: (id, output) => node(id, "asset", { status: "completed", output }),
    async context(target, inputs = {}, signal = new AbortController().signal) {
      const jobId = `job-${++jobs}`;
      const workDir = join(dir, "work", jobId);
      await mkdir(workDir, { recursive: true });
      const progress: number[] = [];
      const ctx: WorkContext = {
        job: { v: 1, jobId, pipelineId: PIPELINE, nodeId: target.id, type: target.type, dispatchedAt: new Date().toISOString() },
        attempt: 1,
        node: target,
        inputs,
        storage,
        workDir,
        signal,
        progress: (p) => progress.push(p),
        logger,
      };
      return { ctx, progress, jobId };
    },
    async storeClip(key, opts) {
      const path = join(dir, `clip-${++clips}.mp4`);
      await makeTestClip({ ...opts, path });
      await storage.putFile(key, path);
      return key;
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

export interface ProcessInfo {
  pid: number;
  ppid: number;
  /** The kernel's short name (comm): "ffmpeg", "chromium", "remotion", "setpriv". */
  comm: string;
  state: string;
}

/** Every live process on the machine, from /proc. */
export async function listProcesses(): Promise<ProcessInfo[]> {
  const { readdir, readFile } = await import("node:fs/promises");
  const out: ProcessInfo[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, "utf8");
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out.push({ pid: Number(entry), ppid: Number(fields[1]), comm, state: fields[0]! });
    } catch {
      // Gone while listing.
    }
  }
  return out;
}

/** The processes below `root` (children, grandchildren, ...), zombies excluded. */
export async function descendantsOf(root: number): Promise<ProcessInfo[]> {
  const all = await listProcesses();
  const found: ProcessInfo[] = [];
  const frontier = [root];
  while (frontier.length) {
    const parent = frontier.pop()!;
    for (const p of all) {
      if (p.ppid === parent && p.state !== "Z") {
        found.push(p);
        frontier.push(p.pid);
      }
    }
  }
  return found;
}

/** Which of `pids` are still running (not gone, not zombies). */
export async function stillRunning(pids: readonly number[]): Promise<ProcessInfo[]> {
  const alive = new Map((await listProcesses()).filter((p) => p.state !== "Z").map((p) => [p.pid, p]));
  return pids.map((pid) => alive.get(pid)).filter((p): p is ProcessInfo => p !== undefined);
}
