import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { extname, join } from "node:path";
import { computeCost, mergeVideos, type MergeStrategy } from "@vp/media";
import { createLocalStorage, validateKey, type Storage } from "@vp/storage";

/** The invoke payload (the seeds' video-merger, with storage keys instead of URLs). */
export interface VideoMergerEvent {
  /** Storage keys of the segments, in play order. */
  input_keys: string[];
  /** Storage key to write the merged MP4 to. */
  output_key: string;
  /** true / "always": re-encode regardless; false / "auto" (default): stream copy when compatible. */
  reencode?: boolean | "auto" | "always";
  width?: number;
  height?: number;
  fps?: number;
}

export interface VideoMergerResult {
  s3_key: string;
  duration: number;
  size: number;
  /** US dollars of compute (see COMPUTE_COST_PER_SECOND_USD in @vp/media). */
  cost: number;
  strategy: MergeStrategy;
}

/** The event breaks the contract; retrying the same event cannot succeed. */
export class VideoMergerEventError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "VideoMergerEventError";
  }
}

const MAX_INPUTS = 100;
/** Extensions a downloaded input may keep; anything else is saved as .mp4 (ffmpeg probes content anyway). */
const INPUT_EXTENSIONS = new Set([".mp4", ".mov", ".webm", ".mkv", ".m4v"]);

function intIn(name: string, value: unknown, min: number, max: number): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new VideoMergerEventError(`${name} must be an integer from ${min} to ${max}`);
  }
  return value;
}

function key(name: string, value: unknown): string {
  if (typeof value !== "string") throw new VideoMergerEventError(`${name} must be a storage key`);
  try {
    return validateKey(value);
  } catch (error) {
    throw new VideoMergerEventError(`${name}: ${(error as Error).message}`, { cause: error });
  }
}

export function parseEvent(event: unknown): Required<Pick<VideoMergerEvent, "input_keys" | "output_key">> & {
  mode: "auto" | "always";
  width?: number;
  height?: number;
  fps?: number;
} {
  if (!event || typeof event !== "object") throw new VideoMergerEventError("event must be an object");
  const e = event as Record<string, unknown>;
  if (!Array.isArray(e.input_keys) || e.input_keys.length === 0 || e.input_keys.length > MAX_INPUTS) {
    throw new VideoMergerEventError(`input_keys must list 1 to ${MAX_INPUTS} storage keys`);
  }
  const inputKeys = e.input_keys.map((k, i) => key(`input_keys[${i}]`, k));
  const outputKey = key("output_key", e.output_key);
  let mode: "auto" | "always";
  if (e.reencode === undefined || e.reencode === false || e.reencode === "auto") mode = "auto";
  else if (e.reencode === true || e.reencode === "always") mode = "always";
  else throw new VideoMergerEventError('reencode must be true, false, "auto" or "always"');
  let fps: number | undefined;
  if (e.fps !== undefined && e.fps !== null) {
    if (typeof e.fps !== "number" || !Number.isFinite(e.fps) || e.fps < 1 || e.fps > 120) {
      throw new VideoMergerEventError("fps must be a number from 1 to 120");
    }
    fps = e.fps;
  }
  return {
    input_keys: inputKeys,
    output_key: outputKey,
    mode,
    width: intIn("width", e.width, 16, 7680),
    height: intIn("height", e.height, 16, 4320),
    fps,
  };
}

export interface VideoMergerDeps {
  storage: Storage;
  /** Where per-invocation directories go; Lambda's writable /tmp by default. */
  tmpRoot?: string;
  ffmpegTimeoutMs?: number;
}

/**
 * The handler over a given storage: download the inputs under generated names into a fresh directory,
 * run the shared merge core (the same mergeVideos the executor runs), upload the result.
 */
export function createHandler(deps: VideoMergerDeps) {
  const { storage } = deps;
  return async function handler(event: unknown): Promise<VideoMergerResult> {
    const started = performance.now();
    const parsed = parseEvent(event);
    const workDir = await mkdtemp(join(deps.tmpRoot ?? tmpdir(), "video-merger-"));
    try {
      const inputs: string[] = [];
      for (const [i, inputKey] of parsed.input_keys.entries()) {
        const ext = extname(inputKey).toLowerCase();
        const local = join(workDir, `seg-${String(i).padStart(3, "0")}${INPUT_EXTENSIONS.has(ext) ? ext : ".mp4"}`);
        await storage.download(inputKey, local);
        inputs.push(local);
      }
      const output = join(workDir, "output.mp4");
      const { strategy, probe } = await mergeVideos({
        inputs,
        output,
        workDir,
        mode: parsed.mode,
        width: parsed.width,
        height: parsed.height,
        fps: parsed.fps,
        timeoutMs: deps.ffmpegTimeoutMs,
      });
      const { size } = await storage.putFile(parsed.output_key, output, { contentType: "video/mp4" });
      return {
        s3_key: parsed.output_key,
        duration: Math.round(probe.durationSeconds * 1000) / 1000,
        size,
        cost: computeCost((performance.now() - started) / 1000),
        strategy,
      };
    } finally {
      await rm(workDir, { recursive: true, force: true });
    }
  };
}

let fromEnv: ReturnType<typeof createHandler> | undefined;

/**
 * The deployed entry point. Storage comes from the environment: for now only the local backend under
 * STORAGE_ROOT. The S3 backend (bucket from env, same Storage interface) replaces it in a later issue;
 * nothing else in this file changes then.
 */
export const handler = (event: unknown): Promise<VideoMergerResult> => {
  if (!fromEnv) {
    const root = process.env.STORAGE_ROOT;
    if (!root) throw new Error("STORAGE_ROOT is not set (the S3 backend is not available yet)");
    fromEnv = createHandler({ storage: createLocalStorage({ root }) });
  }
  return fromEnv(event);
};

export default handler;
