import { createLocalStorage } from "./local";
import { createS3Storage } from "./s3";
import type { Storage } from "./types";

/**
 * The storage a process uses, from its environment (read once, in main.ts or a Lambda entry point):
 *
 *   STORAGE              local (default) or s3
 *   STORAGE_ROOT         local: the directory of every object (default .data/storage)
 *   S3_BUCKET            s3: the bucket (required)
 *   S3_PREFIX            s3: prepended to every key, e.g. "prod/" (default none)
 *   S3_REGION            s3: default AWS_REGION, else us-east-1
 *   S3_ENDPOINT          s3: an S3-compatible endpoint (MinIO, s3rver); default AWS
 *   S3_FORCE_PATH_STYLE  s3: "true"/"1" puts the bucket in the path (local S3 servers need it)
 *
 * Credentials come from the AWS SDK's chain (AWS_ACCESS_KEY_ID/..., a profile, the instance or Lambda role).
 */
export function createStorageFromEnv(env: Record<string, string | undefined> = process.env): Storage {
  const kind = (env.STORAGE ?? "local").trim().toLowerCase() || "local";
  if (kind === "local") return createLocalStorage({ root: env.STORAGE_ROOT || ".data/storage" });
  if (kind !== "s3") throw new Error(`STORAGE must be "local" or "s3", got ${JSON.stringify(env.STORAGE)}`);
  const bucket = env.S3_BUCKET?.trim();
  if (!bucket) throw new Error("STORAGE=s3 needs S3_BUCKET");
  const pathStyle = (env.S3_FORCE_PATH_STYLE ?? "").trim().toLowerCase();
  return createS3Storage({
    bucket,
    prefix: env.S3_PREFIX,
    region: env.S3_REGION || env.AWS_REGION || "us-east-1",
    endpoint: env.S3_ENDPOINT || undefined,
    forcePathStyle: pathStyle === "true" || pathStyle === "1",
    // Keys in the given environment win; without them the SDK's default chain (profile, instance role).
    credentials:
      env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
        ? { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY, sessionToken: env.AWS_SESSION_TOKEN || undefined }
        : undefined,
  });
}
