import { z } from "zod";
import { toSerializedNode, updateNodeStructure } from "@vp/db";
import type { GatewayDeps } from "./deps";
import { HttpError, notFound } from "./errors";
import { releaseFile } from "./storage-files";
import { announceStructure } from "./structure";

/**
 * The rules every asset upload follows, whichever way its bytes travel (PUT .../asset through the gateway, or a
 * presigned multipart upload straight to S3): which files a node takes, the size limit, and how the stored file
 * becomes the asset.
 */

/** Content types accepted for uploads, with the extension the stored file gets. Anything else is a 415. */
export const UPLOAD_TYPES: Record<string, { ext: string; media: string }> = {
  "video/mp4": { ext: "mp4", media: "video" },
  "video/quicktime": { ext: "mov", media: "video" },
  "video/webm": { ext: "webm", media: "video" },
  "video/x-matroska": { ext: "mkv", media: "video" },
  "audio/mpeg": { ext: "mp3", media: "audio" },
  "audio/wav": { ext: "wav", media: "audio" },
  "audio/x-wav": { ext: "wav", media: "audio" },
  "audio/mp4": { ext: "m4a", media: "audio" },
  "audio/ogg": { ext: "ogg", media: "audio" },
  "image/png": { ext: "png", media: "image" },
  "image/jpeg": { ext: "jpg", media: "image" },
  "text/plain": { ext: "txt", media: "text" },
  "application/json": { ext: "json", media: "json" },
};

export type SerializedNode = ReturnType<typeof toSerializedNode>;

/**
 * An uploaded file's name as the browser gave it, kept with the asset for the editor to show (as text): a base name,
 * no path separators or control characters, at most 255 characters. Never part of a storage key.
 */
export const UploadFileName = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[^\u0000-\u001f\u007f/\\]+$/, "must be a file name, without path separators or control characters");

/**
 * What an upload to `node` is stored as, from its Content-Type: only a pending asset node takes one, of a type in
 * UPLOAD_TYPES that matches the media type the asset declares (if it declares one).
 */
export function acceptedUpload(node: SerializedNode, header: string | undefined): { contentType: string; ext: string; media: string } {
  if (node.type !== "asset") throw new HttpError(422, `Only asset nodes take an upload, this node is ${node.type}`);
  if (node.status !== "pending") throw new HttpError(409, `The asset can only be replaced while the node is pending (it is ${node.status})`);
  const contentType = (header ?? "").split(";")[0]!.trim().toLowerCase();
  const kind = UPLOAD_TYPES[contentType];
  if (!kind) {
    throw new HttpError(415, `Unsupported Content-Type "${contentType || "(none)"}"; use one of ${Object.keys(UPLOAD_TYPES).join(", ")}`);
  }
  const declared = (node.asset as { type?: string } | null)?.type;
  if (declared && declared !== kind.media) {
    throw new HttpError(422, `This asset is declared as ${declared}, but the upload is ${contentType}`);
  }
  return { contentType, ext: kind.ext, media: declared ?? kind.media };
}

/** Refuses a declared upload size over the limit (413) before any byte is stored. */
export function checkUploadSize(deps: Pick<GatewayDeps, "maxUploadBytes">, size: number): void {
  if (size > deps.maxUploadBytes) throw new HttpError(413, `Upload is ${size} bytes; the limit is ${deps.maxUploadBytes} bytes`);
}

/**
 * Makes the stored file the asset's one origin (a url set before is dropped: null, as the column takes partial
 * writes), then lets the replaced upload go unless the cache still refers to it. The file is deleted when the write
 * fails or the node was deleted while it was being uploaded.
 */
export async function recordUpload(
  deps: GatewayDeps,
  pipelineId: string,
  node: SerializedNode,
  file: { key: string; size: number; contentType: string; media: string; name?: string },
  author: { by: string; client?: string },
): Promise<SerializedNode> {
  const { by, client } = author;
  const hadUrl = typeof (node.asset as { url?: unknown } | null)?.url === "string";
  const { key, size, contentType } = file;
  // A file sent without its name clears the name of the one it replaces (null: the column takes partial writes).
  const name = file.name ?? null;
  const row = await updateNodeStructure(
    deps.editor,
    pipelineId,
    node.id,
    { assetPatch: { type: file.media, source: key, size, contentType, name, uploadedAt: new Date().toISOString(), ...(hadUrl ? { url: null } : {}) } },
    undefined,
    { by },
  ).catch(async (error: unknown) => {
    await deps.storage.delete(key);
    throw error;
  });
  if (!row) {
    await deps.storage.delete(key);
    throw notFound("Node");
  }
  const previous = (node.asset as { source?: string } | null)?.source;
  if (previous && previous !== key) await releaseFile(deps, pipelineId, previous);
  deps.logger.info({ pipelineId, nodeId: node.id, size, key }, "asset uploaded");
  // With the uploading page's id, so that page knows the change as its own (no "someone changed" notice).
  announceStructure(deps, { pipelineId, revision: Number(row.revision), by, client, nodes: [{ id: node.id, row }] });
  return toSerializedNode(row);
}
