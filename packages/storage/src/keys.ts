import { StorageKeyError } from "./errors";

export const MAX_KEY_LENGTH = 512;

/**
 * One path segment of a key. It must start with a letter or digit, so `.`, `..`, hidden names and our own
 * temp files (`.<name>.<random>.tmp`) can never be addressed by a key, and it has no `%`, `:`, `\` or
 * whitespace, so no encoded traversal, drive letter or URL scheme gets through either.
 */
export const KEY_SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** File extension of a generated key. */
const EXTENSION = /^[a-z0-9]{1,10}$/;

/**
 * Checks the syntactic key rules shared by every backend (local disk and S3 accept exactly the same keys):
 * relative, `/`-separated, no empty segment, every segment matching KEY_SEGMENT, at most 512 characters.
 * Returns the key unchanged so it can be used inline.
 */
export function validateKey(key: string): string {
  if (typeof key !== "string" || key.length === 0) throw new StorageKeyError("storage key must be a non-empty string");
  if (key.length > MAX_KEY_LENGTH) throw new StorageKeyError(`storage key is longer than ${MAX_KEY_LENGTH} characters`);
  if (key.includes("\\")) throw new StorageKeyError(`storage key must not contain a backslash: ${JSON.stringify(key)}`);
  if (key.startsWith("/")) throw new StorageKeyError(`storage key must be relative: ${JSON.stringify(key)}`);
  for (const segment of key.split("/")) {
    if (segment === "") throw new StorageKeyError(`storage key has an empty segment: ${JSON.stringify(key)}`);
    if (segment === "." || segment === "..") {
      throw new StorageKeyError(`storage key must not contain '.' or '..' segments: ${JSON.stringify(key)}`);
    }
    if (!KEY_SEGMENT.test(segment)) {
      throw new StorageKeyError(`storage key segment ${JSON.stringify(segment)} must be letters, digits, '.', '_' or '-', starting with a letter or digit`);
    }
  }
  return key;
}

export function isValidKey(key: string): boolean {
  try {
    validateKey(key);
    return true;
  } catch {
    return false;
  }
}

function part(name: string, value: string): string {
  if (typeof value !== "string" || !KEY_SEGMENT.test(value) || value.length > 128) {
    throw new StorageKeyError(`${name} is not usable in a storage key: ${JSON.stringify(value)}`);
  }
  return value;
}

function extension(ext: string): string {
  if (typeof ext !== "string" || !EXTENSION.test(ext)) {
    throw new StorageKeyError(`file extension must be 1-10 lowercase letters or digits: ${JSON.stringify(ext)}`);
  }
  return ext;
}

/** Where a job's output is stored (architecture section 7). Only the system generates these keys. */
export function outputKey(pipelineId: string, nodeId: string, jobId: string, ext: string, attempt?: number): string {
  // With the attempt, a superseded attempt that finishes late writes beside the committed result, never over it.
  const run = attempt === undefined ? part("jobId", jobId) : `${part("jobId", jobId)}-a${attemptNumber(attempt)}`;
  return validateKey(`pipelines/${part("pipelineId", pipelineId)}/nodes/${part("nodeId", nodeId)}/${run}/output.${extension(ext)}`);
}

function attemptNumber(attempt: number): number {
  if (!Number.isSafeInteger(attempt) || attempt < 0) throw new StorageKeyError(`attempt is not usable in a storage key: ${attempt}`);
  return attempt;
}

/** Where the gateway stores the file uploaded for an asset node. */
export function assetKey(pipelineId: string, nodeId: string, uploadId: string, ext: string): string {
  return validateKey(`pipelines/${part("pipelineId", pipelineId)}/nodes/${part("nodeId", nodeId)}/asset/${part("uploadId", uploadId)}.${extension(ext)}`);
}

/**
 * Checks a key prefix for list/deletePrefix: one or more key segments ending in `/` (never "" nor the whole
 * store), so a prefix always names a directory-like subtree and `pipelines/p1/` never matches `pipelines/p10/`.
 */
export function validatePrefix(prefix: string): string {
  if (typeof prefix !== "string" || !prefix.endsWith("/")) {
    throw new StorageKeyError(`storage prefix must end with '/': ${JSON.stringify(prefix)}`);
  }
  validateKey(prefix.slice(0, -1));
  return prefix;
}

/** Everything stored for a pipeline: its uploads and every attempt's outputs of every node. */
export function pipelinePrefix(pipelineId: string): string {
  return validatePrefix(`pipelines/${part("pipelineId", pipelineId)}/`);
}

/** Everything stored for one node of a pipeline. */
export function nodePrefix(pipelineId: string, nodeId: string): string {
  return validatePrefix(`pipelines/${part("pipelineId", pipelineId)}/nodes/${part("nodeId", nodeId)}/`);
}

/** The pipeline and node a generated key (output or upload) belongs to; null for any other key. */
export function ownerOfKey(key: string): { pipelineId: string; nodeId: string } | null {
  const match = /^pipelines\/([^/]+)\/nodes\/([^/]+)\//.exec(key);
  return match ? { pipelineId: match[1]!, nodeId: match[2]! } : null;
}
