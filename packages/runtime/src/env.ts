import { resolve } from "node:path";
import { z } from "zod";

/** An empty or blank variable counts as unset (a manifest or shell that sets `WORK_ROOT=` means "the default"). */
const blankIsUnset = (value: unknown) => (typeof value === "string" && value.trim() === "" ? undefined : value);

/**
 * A filesystem path setting with a default, resolved to an absolute path against the process's working
 * directory when the environment is loaded. Relative paths must not travel further: tools handed them later
 * (Remotion's webpack bundler, child processes with another cwd) refuse them or read them differently.
 */
export const pathSetting = (fallback: string) => z.preprocess(blankIsUnset, z.string().default(fallback)).transform((path) => resolve(path));

/** An optional filesystem path setting: unset stays undefined, a set one is resolved like pathSetting's. */
export const optionalPathSetting = () =>
  z.preprocess(blankIsUnset, z.string().optional()).transform((path) => (path === undefined ? undefined : resolve(path)));

/**
 * The storage backend: createStorageFromEnv (@vp/storage) reads STORAGE with STORAGE_ROOT (local) or S3_BUCKET,
 * S3_PREFIX, S3_REGION, S3_ENDPOINT and S3_FORCE_PATH_STYLE (s3). Blank means local, as it does there.
 */
export const storageSetting = () =>
  z.preprocess((v) => (typeof v === "string" ? v.trim().toLowerCase() || undefined : v), z.enum(["local", "s3"]).default("local"));
