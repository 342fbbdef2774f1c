import {
  forgetGarbage,
  getNode,
  getPipeline,
  keepGarbageKeys,
  listGarbagePrefixes,
  pipelineStorageUsage,
  referencedKeysUnder,
  unreferencedGarbageKeys,
  type Queryable,
} from "@vp/db";
import { ownerOfKey, type Storage } from "@vp/storage";
import type { Logger } from "@vp/telemetry";
import { HttpError } from "./errors";

/**
 * What happens to stored files when their pipeline or node goes, and the per-pipeline storage quota.
 *
 * Deleting: the delete transaction records the owner's prefix as garbage (packages/db deletePipeline/deleteNode);
 * once it commits, collectDeletedFiles deletes everything under the prefix except files a cache entry or a node of
 * any pipeline still refers to. Those are kept as garbage keys, counted in their pipeline's quota, and deleted by the
 * periodic pass once nothing refers to them (the state-writer evicts cache entries). An executor finishing a deleted
 * node's work after this deletes its own output (packages/runtime job runner); an upload finishing after it is
 * deleted by the upload route when its row write finds no node.
 */

export interface StorageFilesDeps {
  reader: Queryable;
  editor: Queryable;
  storage: Storage;
  logger: Logger;
}

/** Default per-pipeline storage quota: 20 GiB. */
export const DEFAULT_STORAGE_QUOTA_BYTES = 20 * 1024 ** 3;

export interface CollectResult {
  deleted: number;
  bytes: number;
  kept: number;
}

/** Whether the prefix's owner exists again (an id reused after its deletion): its files are not garbage then. */
async function ownerExists(db: Queryable, prefix: string): Promise<boolean> {
  const owner = ownerOfKey(prefix);
  if (owner) return (await getNode(db, owner.pipelineId, owner.nodeId)) !== null;
  const pipelineId = /^pipelines\/([^/]+)\/$/.exec(prefix)?.[1];
  return pipelineId !== undefined && (await getPipeline(db, pipelineId)) !== null;
}

/**
 * Deletes the files of deleted pipelines and nodes (`only`: the one prefix a delete just recorded), keeping what
 * is still referred to, then the kept files nothing refers to any more. Safe to run concurrently and repeatedly.
 */
export async function collectDeletedFiles(deps: StorageFilesDeps, options: { only?: string } = {}): Promise<CollectResult> {
  const total: CollectResult = { deleted: 0, bytes: 0, kept: 0 };
  for (const row of await listGarbagePrefixes(deps.reader, { only: options.only })) {
    if (await ownerExists(deps.reader, row.s3_key)) {
      deps.logger.warn({ pipelineId: row.pipeline_id, prefix: row.s3_key }, "a deleted owner's id is in use again; its old files are left in place");
    } else {
      const keep = await referencedKeysUnder(deps.reader, row.s3_key);
      const result = await deps.storage.deletePrefix(row.s3_key, { keep });
      await keepGarbageKeys(deps.editor, row.pipeline_id, result.kept);
      total.deleted += result.deleted;
      total.bytes += result.bytes;
      total.kept += result.kept.length;
      deps.logger.info(
        { pipelineId: row.pipeline_id, prefix: row.s3_key, deleted: result.deleted, bytes: result.bytes, kept: result.kept.length },
        "deleted files of a deleted owner",
      );
    }
    await forgetGarbage(deps.editor, row);
  }
  if (options.only) return total;
  for (const row of await unreferencedGarbageKeys(deps.reader)) {
    await deps.storage.delete(row.s3_key);
    await forgetGarbage(deps.editor, row);
    total.deleted += 1;
    total.bytes += row.bytes;
    deps.logger.info({ pipelineId: row.pipeline_id, key: row.s3_key, bytes: row.bytes }, "deleted a kept file nothing refers to any more");
  }
  return total;
}

/** After a delete committed: its files go now; a failure is logged and left to the periodic pass. */
export async function deleteFilesOf(deps: StorageFilesDeps, prefix: string): Promise<void> {
  try {
    await collectDeletedFiles(deps, { only: prefix });
  } catch (error) {
    deps.logger.error({ err: error, prefix }, "stored files of a deleted owner not deleted yet; the periodic pass retries");
  }
}

/** A file its node no longer uses (a replaced upload): deleted, unless something still refers to it (then kept). */
export async function releaseFile(deps: StorageFilesDeps, pipelineId: string, key: string): Promise<void> {
  try {
    const stat = await deps.storage.stat(key);
    if (!stat) return;
    if ((await referencedKeysUnder(deps.reader, key)).has(key)) {
      await keepGarbageKeys(deps.editor, pipelineId, [{ key, size: stat.size }]);
      return;
    }
    await deps.storage.delete(key);
  } catch (error) {
    deps.logger.warn({ err: error, pipelineId, key }, "a released file could not be deleted");
  }
}

/** Runs collectDeletedFiles every `intervalMs` (one pass at a time); stop() ends it. */
export function startFileCollector(deps: StorageFilesDeps, intervalMs: number): { stop(): Promise<void> } {
  let running: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    running = running.then(() =>
      collectDeletedFiles(deps).catch((error: unknown) => deps.logger.error({ err: error }, "stored-file collection failed; retried on the next pass")),
    );
  }, intervalMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}

export interface UploadAllowance {
  quotaBytes: number;
  /** Stored, plus what this process's other uploads to the pipeline have reserved. */
  usedBytes: number;
  /** Most bytes this upload may store (reserved for it until release). */
  remainingBytes: number;
  /** Ends the reservation (the upload is stored and its row written, or it failed). Idempotent. */
  release(): void;
}

/** Bytes reserved by uploads in flight in this process, per pipeline: parallel uploads cannot each take the rest. */
const reserved = new Map<string, number>();

const gib = (bytes: number) => `${(bytes / 1024 ** 3).toFixed(2)} GiB`;

/** The 413 of an upload that does not fit in the pipeline's quota, with the numbers. */
export function quotaExceeded(quota: number, used: number, upload?: number): HttpError {
  const wanted = upload !== undefined ? `; this upload is ${upload} bytes` : "";
  return new HttpError(
    413,
    `Pipeline storage quota exceeded: the quota is ${quota} bytes (${gib(quota)}), ${used} bytes (${gib(used)}) are in use${wanted}. Delete nodes or pipelines to free space`,
    { quota_bytes: quota, used_bytes: used, ...(upload !== undefined ? { upload_bytes: upload } : {}) },
  );
}

/**
 * Room left in the pipeline's quota for an upload of `declared` bytes (Content-Length, when sent, else at most
 * `maxBytes`); throws the 413 when there is none. The room is reserved until release(): uploads in flight in this
 * process count as used, so parallel uploads cannot each fill the rest (across gateway replicas each replica can
 * still overshoot by one upload's size). The upload streams with maxBytes = remainingBytes, so an undeclared or
 * understated body is stopped at the quota too.
 */
export async function uploadAllowance(
  db: Queryable,
  pipelineId: string,
  quotaBytes: number,
  options: { declared?: number; maxBytes: number },
): Promise<UploadAllowance> {
  const stored = await pipelineStorageUsage(db, pipelineId);
  const usedBytes = stored + (reserved.get(pipelineId) ?? 0);
  const room = quotaBytes - usedBytes;
  const { declared } = options;
  if (room <= 0 || (declared !== undefined && declared > room)) throw quotaExceeded(quotaBytes, usedBytes, declared);
  const remainingBytes = Math.min(room, options.maxBytes);
  const mine = declared ?? remainingBytes;
  reserved.set(pipelineId, (reserved.get(pipelineId) ?? 0) + mine);
  let released = false;
  return {
    quotaBytes,
    usedBytes,
    remainingBytes,
    release() {
      if (released) return;
      released = true;
      const left = (reserved.get(pipelineId) ?? 0) - mine;
      if (left > 0) reserved.set(pipelineId, left);
      else reserved.delete(pipelineId);
    },
  };
}
