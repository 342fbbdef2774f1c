/**
 * What every ffmpeg Lambda shares: parse the event with its contract schema, work in a fresh directory of
 * the function's ephemeral storage, download inputs under generated names, upload the output, and answer
 * with the contract's payload `{ s3_key, duration, size, cost }`. The media work itself is @vp/media, the same
 * code executor-ffmpeg runs locally.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { extname, join } from "node:path";
import type { z } from "zod";
import type { LambdaMediaResult } from "@vp/contracts";
import { factsOfProbe, isInvalidMediaError, lambdaCost, type ProbeResult } from "@vp/media";
import { createStorageFromEnv, NotFoundError, StorageKeyError, validateKey, type Storage } from "@vp/storage";

/** The event breaks the function's contract; invoking again with the same event cannot succeed. */
export class LambdaEventError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "LambdaEventError";
  }
}

/**
 * The inputs cannot be processed (not media ffmpeg can read, a key that names nothing or breaks the key rules):
 * invoking again with the same inputs cannot succeed. Its name travels to the executor as the errorType, which
 * fails the node instead of retrying; any other error (a timeout, memory, S3) is retried there.
 */
export class LambdaInputError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "LambdaInputError";
  }
}

export interface LambdaDeps {
  storage: Storage;
  /** Where per-invocation directories go; Lambda's writable /tmp by default. */
  tmpRoot?: string;
  ffmpegTimeoutMs?: number;
  /** Memory the function is configured with (AWS_LAMBDA_FUNCTION_MEMORY_SIZE), for its GB-second cost. */
  memoryMb?: number;
}

/** The memory size Lambda runs the functions with (3008 MB, as deployed) when the environment does not say. */
export const DEFAULT_MEMORY_MB = 3008;

/** Parses an event with its schema and checks every key against the storage key rules. */
export function parseEvent<S extends z.ZodType>(schema: S, event: unknown, keyFields: (parsed: z.output<S>) => Array<[string, string]>): z.output<S> {
  const parsed = schema.safeParse(event);
  if (!parsed.success) {
    const reason = parsed.error.issues.map((i) => `${i.path.join(".") || "event"}: ${i.message}`).join("; ");
    throw new LambdaEventError(`invalid event: ${reason}`);
  }
  for (const [name, key] of keyFields(parsed.data)) {
    try {
      validateKey(key);
    } catch (error) {
      throw new LambdaEventError(`${name}: ${(error as Error).message}`, { cause: error });
    }
  }
  return parsed.data;
}

/** Extensions a downloaded input may keep; anything else is saved as `fallback` (ffmpeg probes content anyway). */
const INPUT_EXTENSIONS = new Set([".mp4", ".mov", ".webm", ".mkv", ".m4v", ".m4a", ".mp3", ".wav", ".ogg", ".aac"]);

/** `<name>.<ext>` in `dir`: the local name of an input, generated, with the key's extension when it is a known one. */
export function localName(dir: string, name: string, key: string, fallback: string): string {
  const ext = extname(key).toLowerCase();
  return join(dir, `${name}${INPUT_EXTENSIONS.has(ext) ? ext : fallback}`);
}

/** Runs `work` in a fresh directory under tmpRoot and removes it afterwards, whatever happens. */
export async function inWorkDir<T>(deps: LambdaDeps, prefix: string, work: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(deps.tmpRoot ?? tmpdir(), `${prefix}-`));
  try {
    return await work(dir);
  } catch (error) {
    if (isInvalidMediaError(error) || error instanceof NotFoundError || error instanceof StorageKeyError) {
      throw new LambdaInputError((error as Error).message, { cause: error });
    }
    throw error;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The payload the functions answer with, for an output already uploaded to `key`. */
export function mediaResult(
  key: string,
  size: number,
  p: ProbeResult,
  startedMs: number,
  deps: LambdaDeps,
  extra: Partial<LambdaMediaResult> = {},
): LambdaMediaResult {
  const result: LambdaMediaResult = {
    s3_key: key,
    duration: Math.round(p.durationSeconds * 1000) / 1000,
    size,
    cost: lambdaCost({ durationMs: performance.now() - startedMs, memoryMb: deps.memoryMb ?? DEFAULT_MEMORY_MB }),
    width: p.video?.width,
    height: p.video?.height,
    video_codec: p.video?.codec,
    audio_codec: p.audio?.codec,
    // All the output's probe facts, for the node's output: the nodes after it then need not probe the file.
    facts: { ...factsOfProbe(p), size },
    ...extra,
  };
  for (const k of Object.keys(result)) if (result[k] === undefined) delete result[k];
  return result;
}

/**
 * The deployed entry point of a function: dependencies from the environment, built on the first invocation
 * and kept for the warm container's later ones. STORAGE=s3 with S3_BUCKET (and S3_PREFIX) in the function's
 * configuration; AWS_LAMBDA_FUNCTION_MEMORY_SIZE is set by Lambda itself.
 */
export function fromEnvironment<E, R>(create: (deps: LambdaDeps) => (event: E) => Promise<R>): (event: E) => Promise<R> {
  let handler: ((event: E) => Promise<R>) | undefined;
  return (event) => {
    handler ??= create({
      storage: createStorageFromEnv(process.env),
      memoryMb: Number(process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE) || DEFAULT_MEMORY_MB,
      ffmpegTimeoutMs: Number(process.env.FFMPEG_TIMEOUT_MS) || undefined,
    });
    return handler(event);
  };
}
