import { randomUUID } from "node:crypto";
import { Hono, type Context } from "hono";
import { z, ZodError } from "zod";
import { UnauthenticatedError } from "@vp/auth";
import { assetKey, MultipartUploadError, type ClientUploads } from "@vp/storage";
import { logText } from "@vp/telemetry";
import { acceptedUpload, checkUploadSize, recordUpload, UploadFileName } from "../asset-uploads";
import { authorOf, clientOf } from "../structure";
import type { GatewayDeps } from "../deps";
import { HttpError, zodMessage } from "../errors";
import { requireNode } from "../pipeline-access";
import { DEFAULT_STORAGE_QUOTA_BYTES, uploadAllowance } from "../storage-files";
import { jsonBody, pathId } from "../validation";

/**
 * Asset uploads whose bytes go from the browser straight to S3 (UPLOAD_DELIVERY=presigned): the gateway checks the
 * declared file as the PUT route checks a body (role, node, type, size, quota), starts a multipart upload under a
 * key it generates, and hands out presigned UploadPart URLs, each signed for its part's exact length. On completion
 * it assembles the parts, checks the stored object against what was declared and records the asset as the PUT
 * does. Nothing is recorded before that. What was declared travels in a signed upload ticket (the gateway keeps no
 * state between the calls); an upload left unfinished is aborted by the client or, after a day, by the bucket's
 * lifecycle rule.
 */

/** S3 numbers parts 1 to 10,000. */
const MAX_PART_NUMBER = 10_000;
/** Part URLs in one answer (the start's, or one .../uploads/parts call); the editor asks for more as it goes. */
export const URLS_PER_ANSWER = 100;
/** How long an upload may take from start to completion: the bucket's lifecycle rule aborts what is left after a day. */
const TICKET_TTL_SECONDS = 24 * 3600;

const StartBody = z.strictObject({
  /** The file's name in the browser: logged, and kept with the asset for the editor to show (the key is generated). */
  name: UploadFileName,
  content_type: z.string().min(1).max(255),
  size: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
});
const Ticket = z.string().min(1).max(4096);
const PartNumber = z.number().int().min(1).max(MAX_PART_NUMBER);
const PartsBody = z.strictObject({ upload: Ticket, parts: z.array(PartNumber).min(1).max(URLS_PER_ANSWER) });
const CompleteBody = z.strictObject({
  upload: Ticket,
  parts: z
    .array(z.strictObject({ number: PartNumber, etag: z.string().min(1).max(256) }))
    .min(1)
    .max(MAX_PART_NUMBER),
});
const AbortBody = z.strictObject({ upload: Ticket });

/** What the gateway decided when it started an upload, as the upload ticket carries it back. */
const TicketClaims = z.object({
  pipeline: z.string(),
  node: z.string(),
  key: z.string(),
  upload_id: z.string(),
  size: z.number().int().positive(),
  content_type: z.string(),
  part_size: z.number().int().positive(),
  name: z.string().optional(),
});
type Upload = z.infer<typeof TicketClaims>;

const partCount = (upload: Pick<Upload, "size" | "part_size">) => Math.ceil(upload.size / upload.part_size);
/** Every part is part_size bytes but the last, which holds the rest. */
const partBytes = (upload: Pick<Upload, "size" | "part_size">, number: number) => Math.min(upload.part_size, upload.size - (number - 1) * upload.part_size);

interface Direct {
  uploads: ClientUploads;
  urlTtlSeconds: number;
}

function directUploadsOf(deps: GatewayDeps): Direct | null {
  const delivery = deps.uploadDelivery;
  if (delivery?.mode !== "presigned" || !deps.storage.clientUploads) return null;
  return { uploads: deps.storage.clientUploads, urlTtlSeconds: delivery.urlTtlSeconds };
}

function requireDirect(deps: GatewayDeps): Direct {
  const direct = directUploadsOf(deps);
  if (!direct)
    throw new HttpError(409, "This gateway takes uploads through PUT .../asset only (UPLOAD_DELIVERY=presigned on S3 storage turns direct uploads on)");
  return direct;
}

/** The upload a ticket describes, after checking it was minted by this gateway, for this caller and this node. */
async function openTicket(deps: GatewayDeps, c: Context, ticket: string): Promise<Upload> {
  const pipelineId = pathId(c.req.param("pipeline_id"), "Pipeline");
  const nodeId = pathId(c.req.param("id"), "Node");
  let upload: Upload;
  try {
    upload = TicketClaims.parse(await deps.auth.tokens.verifyUploadTicket(ticket, c.get("principal").subject));
  } catch (error) {
    if (error instanceof UnauthenticatedError) throw new HttpError(422, `upload: ${error.message}; start the upload again`);
    if (error instanceof ZodError) throw new HttpError(422, `upload: not an upload ticket (${zodMessage(error)}); start the upload again`);
    throw error;
  }
  if (upload.pipeline !== pipelineId || upload.node !== nodeId) throw new HttpError(422, "upload: this upload was started for another node");
  return upload;
}

async function partUrls(direct: Direct, upload: Upload, numbers: readonly number[]) {
  const count = partCount(upload);
  const beyond = numbers.find((n) => n > count);
  if (beyond !== undefined) throw new HttpError(422, `parts: part ${beyond} is beyond this upload's ${count} part(s)`);
  return Promise.all(
    numbers.map(async (number) => {
      const size = partBytes(upload, number);
      return { number, size, url: await direct.uploads.presignPart(upload.key, upload.upload_id, { number, size }, direct.urlTtlSeconds) };
    }),
  );
}

const urlsExpireAt = (direct: Direct) => new Date(Date.now() + direct.urlTtlSeconds * 1000).toISOString();

/** Ends an upload that can no longer succeed, so its parts do not wait for the lifecycle rule. */
async function abortQuietly(deps: GatewayDeps, direct: Direct, upload: Upload) {
  await direct.uploads.abort(upload.key, upload.upload_id).catch((error: unknown) => {
    deps.logger.warn({ err: error, key: upload.key }, "an unfinished upload could not be aborted; the bucket's lifecycle rule will");
  });
}

/** S3's refusal to assemble the parts, as an answer the client can act on. */
function completionRefused(error: MultipartUploadError): HttpError {
  if (error.code === "NoSuchUpload") {
    return new HttpError(404, "This upload no longer exists (it was aborted, completed already, or is older than a day); start the upload again");
  }
  return new HttpError(422, `${error.message}; send those parts again (fresh URLs from .../asset/uploads/parts) and complete again`);
}

/** The stored object against what the upload declared: why it differs, or null. */
function mismatchOf(upload: Upload, stored: { size: number; contentType: string | undefined }): string | null {
  if (stored.size !== upload.size) return `the stored file is ${stored.size} bytes, but the upload declared ${upload.size} bytes`;
  const type = (stored.contentType ?? "").split(";")[0]!.trim().toLowerCase();
  if (type !== upload.content_type) return `the stored file is ${type || "of no type"}, but the upload declared ${upload.content_type}`;
  return null;
}

const quotaOf = (deps: GatewayDeps) => deps.storageQuotaBytes ?? DEFAULT_STORAGE_QUOTA_BYTES;

/**
 * POST .../asset/uploads/complete: assembles the parts, checks the object's size and type against the declaration
 * and records it as the asset, within the quota (checked again: the parts count only once recorded). A refusal that
 * sending parts again cannot mend aborts the upload; a mismatch deletes the assembled file.
 */
async function completeUpload(deps: GatewayDeps, c: Context) {
  const body = await jsonBody(c, CompleteBody);
  const direct = requireDirect(deps);
  const upload = await openTicket(deps, c, body.upload);
  const numbers = body.parts.map((p) => p.number);
  if (numbers.some((n, i) => i > 0 && n <= numbers[i - 1]!)) throw new HttpError(422, "parts: list each part once, in ascending order of number");
  const count = partCount(upload);
  if (numbers.at(-1)! > count) throw new HttpError(422, `parts: part ${numbers.at(-1)} is beyond this upload's ${count} part(s)`);

  let target: Awaited<ReturnType<typeof requireNode>>;
  let accepted: ReturnType<typeof acceptedUpload>;
  let quota: Awaited<ReturnType<typeof uploadAllowance>>;
  try {
    target = await requireNode(deps.reader, c);
    accepted = acceptedUpload(target.node, upload.content_type);
    quota = await uploadAllowance(deps.reader, target.pipeline.id, quotaOf(deps), { declared: upload.size, maxBytes: deps.maxUploadBytes });
  } catch (error) {
    await abortQuietly(deps, direct, upload);
    throw error;
  }
  try {
    try {
      await direct.uploads.complete(upload.key, upload.upload_id, body.parts);
    } catch (error) {
      if (error instanceof MultipartUploadError) throw completionRefused(error);
      throw error;
    }
    const stored = await direct.uploads.head(upload.key);
    if (!stored) throw new HttpError(404, "The assembled file is not in storage; start the upload again");
    const mismatch = mismatchOf(upload, stored);
    if (mismatch) {
      await deps.storage.delete(upload.key);
      deps.logger.warn({ pipelineId: upload.pipeline, nodeId: upload.node, key: upload.key, mismatch }, "a direct upload did not match its declaration");
      throw new HttpError(422, `${mismatch}; nothing was recorded: start the upload again and send every part`);
    }
    const file = { key: upload.key, size: stored.size, contentType: accepted.contentType, media: accepted.media, name: upload.name };
    return c.json({ node: await recordUpload(deps, target.pipeline.id, target.node, file, { by: authorOf(c), client: clientOf(c) }) });
  } finally {
    quota.release();
  }
}

export function directUploadRoutes(deps: GatewayDeps) {
  const app = new Hono();

  /**
   * POST .../nodes/:id/asset/uploads `{ name, content_type, size }`: checks the file as PUT .../asset checks its body.
   * Direct uploads on: 201 with the upload ticket, the part size and count and the first parts' URLs; off: 200
   * `{ delivery: "proxy" }`, and the client PUTs the file to .../asset.
   */
  app.post("/:id/asset/uploads", async (c) => {
    const body = await jsonBody(c, StartBody);
    const { pipeline, node } = await requireNode(deps.reader, c);
    const accepted = acceptedUpload(node, body.content_type);
    if (body.size === 0) throw new HttpError(422, "The uploaded file is empty");
    checkUploadSize(deps, body.size);
    // The room is checked here and again on completion; nothing is reserved while the parts travel.
    (await uploadAllowance(deps.reader, pipeline.id, quotaOf(deps), { declared: body.size, maxBytes: deps.maxUploadBytes })).release();
    const direct = directUploadsOf(deps);
    if (!direct) return c.json({ delivery: "proxy" });

    const key = assetKey(pipeline.id, node.id, randomUUID(), accepted.ext);
    const { uploadId } = await direct.uploads.start(key, { contentType: accepted.contentType });
    const upload: Upload = {
      pipeline: pipeline.id,
      node: node.id,
      key,
      upload_id: uploadId,
      size: body.size,
      content_type: accepted.contentType,
      part_size: direct.uploads.partSize(body.size),
      name: body.name,
    };
    const ticket = await deps.auth.tokens.mintUploadTicket(c.get("principal").subject, upload, TICKET_TTL_SECONDS);
    const count = partCount(upload);
    const parts = await partUrls(
      direct,
      upload,
      Array.from({ length: Math.min(count, URLS_PER_ANSWER) }, (_, i) => i + 1),
    );
    deps.logger.info({ pipelineId: pipeline.id, nodeId: node.id, key, size: body.size, parts: count, name: logText(body.name) }, "asset upload started");
    return c.json(
      {
        delivery: "presigned",
        upload: ticket.token,
        expires_at: ticket.expiresAt.toISOString(),
        size: upload.size,
        part_size: upload.part_size,
        part_count: count,
        parts,
        urls_expire_at: urlsExpireAt(direct),
      },
      201,
    );
  });

  /** POST .../asset/uploads/parts `{ upload, parts: [numbers] }`: fresh URLs for these parts (at most 100 a call). */
  app.post("/:id/asset/uploads/parts", async (c) => {
    const body = await jsonBody(c, PartsBody);
    const direct = requireDirect(deps);
    const upload = await openTicket(deps, c, body.upload);
    return c.json({ parts: await partUrls(direct, upload, body.parts), urls_expire_at: urlsExpireAt(direct) });
  });

  /** POST .../asset/uploads/complete `{ upload, parts: [{ number, etag }] }`: `{ node }`, as PUT .../asset answers. */
  app.post("/:id/asset/uploads/complete", (c) => completeUpload(deps, c));

  /** POST .../asset/uploads/abort `{ upload }`: 204; the parts sent so far are dropped and nothing is recorded. */
  app.post("/:id/asset/uploads/abort", async (c) => {
    const body = await jsonBody(c, AbortBody);
    const direct = requireDirect(deps);
    const upload = await openTicket(deps, c, body.upload);
    await direct.uploads.abort(upload.key, upload.upload_id);
    deps.logger.info({ pipelineId: upload.pipeline, nodeId: upload.node, key: upload.key }, "asset upload aborted");
    return c.body(null, 204);
  });

  return app;
}
