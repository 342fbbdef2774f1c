import { randomUUID } from "node:crypto";
import { Readable } from "node:stream";
import { Hono, type Context } from "hono";
import { stream } from "hono/streaming";
import type { NodeOutput } from "@vp/contracts";
import { assetKey, TooLargeError } from "@vp/storage";
import { acceptedUpload, checkUploadSize, recordUpload, UploadFileName } from "../asset-uploads";
import { authorOf, clientOf } from "../structure";
import type { GatewayDeps } from "../deps";
import { HttpError, notFound, zodMessage } from "../errors";
import { requireNode } from "../pipeline-access";
import { DEFAULT_STORAGE_QUOTA_BYTES, quotaExceeded, uploadAllowance, type UploadAllowance } from "../storage-files";

const OUTPUT_CONTENT_TYPES: Record<string, string> = {
  video: "video/mp4",
  audio: "audio/mpeg",
  text: "text/plain; charset=utf-8",
  json: "application/json",
  image: "image/png",
};

/** Text outputs are UTF-8 (the executors write them so): say it, so a browser never guesses another charset. */
export function outputContentType(contentType: string): string {
  const [type = "", ...params] = contentType.split(";").map((p) => p.trim());
  const isText = /^text\//i.test(type) || /^application\/json$/i.test(type);
  if (!isText || params.some((p) => /^charset=/i.test(p))) return contentType;
  return [type, ...params, "charset=utf-8"].join("; ");
}

/** Parses a single `bytes=a-b` range against a size. Returns null for no/unsupported range, "invalid" if unsatisfiable. */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | null | "invalid" {
  if (!header) return null;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match) return null;
  const [, a = "", b = ""] = match;
  if (a === "" && b === "") return "invalid";
  let start: number;
  let end: number;
  if (a === "") {
    const suffix = Number(b);
    if (suffix === 0) return "invalid";
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(a);
    end = b === "" ? size - 1 : Math.min(Number(b), size - 1);
  }
  if (start >= size || start > end) return "invalid";
  return { start, end };
}

/**
 * `chunks` where each wait for the client may last at most `ms`: an upload may take as long as it keeps moving
 * (no overall deadline: a 2 GiB file on a slow line takes hours), and one that stalls is cut with a 408.
 */
function idleTimeout<T>(chunks: AsyncIterator<T>, ms: number, onStall: () => void): AsyncIterator<T> {
  return {
    next: () =>
      new Promise<IteratorResult<T>>((resolve, reject) => {
        const timer = setTimeout(() => {
          onStall();
          reject(new HttpError(408, `The upload stalled: no data arrived for ${Math.round(ms / 1000)} s; send the file again`));
        }, ms);
        chunks.next().then(
          (result) => (clearTimeout(timer), resolve(result)),
          (error: unknown) => (clearTimeout(timer), reject(error)),
        );
      }),
  };
}

/** The stored file an output request names: the main result, or one of output.files by name. */
function requestedFile(output: NodeOutput, name: string | undefined): { key: string; contentType: string } {
  if (name === undefined) {
    return { key: output.s3Key, contentType: outputContentType(output.contentType ?? OUTPUT_CONTENT_TYPES[output.type] ?? "application/octet-stream") };
  }
  const file = output.files && Object.hasOwn(output.files, name) ? output.files[name] : undefined;
  if (!file) {
    const names = Object.keys(output.files ?? {});
    throw new HttpError(404, `This output has no file "${name.slice(0, 40)}"${names.length ? ` (it has: ${names.join(", ")})` : ""}`);
  }
  return { key: file.s3Key, contentType: outputContentType(file.contentType) };
}

/** Headers of every output answer: the bytes are shown as what they are, never as a page of the gateway's origin. */
const OUTPUT_HEADERS = {
  "X-Content-Type-Options": "nosniff",
  "Content-Security-Policy": "default-src 'none'; media-src 'self'; img-src 'self'; style-src 'unsafe-inline'; sandbox",
};

/**
 * The request body from its first bytes on, read before storage is touched so that an empty upload is refused
 * without leaving anything behind; a wait of more than `idleMs` for the client is a 408.
 */
async function nonEmptyBody(body: ReadableStream<Uint8Array>, idleMs: number): Promise<Readable> {
  const source = Readable.fromWeb(body as import("node:stream/web").ReadableStream);
  const chunks = idleTimeout(source[Symbol.asyncIterator](), idleMs, () => source.destroy());
  let first: IteratorResult<Uint8Array>;
  do first = await chunks.next();
  while (!first.done && first.value.length === 0);
  if (first.done) throw new HttpError(422, "The uploaded file is empty");
  return Readable.from(
    (async function* () {
      yield first.value;
      for (let next = await chunks.next(); !next.done; next = await chunks.next()) yield next.value;
    })(),
  );
}

/** Streams the upload to `key`, stopping where the upload limit or the pipeline's quota does; its size in bytes (never 0). */
async function storeUpload(deps: GatewayDeps, key: string, upload: Readable, contentType: string, quota: UploadAllowance): Promise<number> {
  let size: number;
  try {
    // A body without (or lying about) its length stops where the quota does.
    ({ size } = await deps.storage.put(key, upload, { maxBytes: Math.min(deps.maxUploadBytes, quota.remainingBytes), contentType }));
  } catch (error) {
    if (error instanceof TooLargeError) {
      if (quota.remainingBytes < deps.maxUploadBytes) throw quotaExceeded(quota.quotaBytes, quota.usedBytes);
      throw new HttpError(413, `Upload exceeds the limit of ${deps.maxUploadBytes} bytes`);
    }
    throw error;
  }
  if (size === 0) {
    await deps.storage.delete(key);
    throw new HttpError(422, "The uploaded file is empty");
  }
  return size;
}

/** The `?name=` of an upload (the file's name in the browser, kept for the editor to show), checked; undefined when absent. */
function uploadName(c: Context): string | undefined {
  const raw = c.req.query("name");
  if (raw === undefined) return undefined;
  const parsed = UploadFileName.safeParse(raw);
  if (!parsed.success) throw new HttpError(422, `name: ${zodMessage(parsed.error)}`);
  return parsed.data;
}

/**
 * PUT .../nodes/:id/asset[?name=<file name>]: an asset node's file, the raw body streamed to storage under a generated
 * key, within the upload limit and the pipeline's storage quota (refused before streaming when it is full or the
 * declared length does not fit; the room is reserved for this upload until it is stored and recorded, or fails).
 */
async function uploadAsset(deps: GatewayDeps, c: Context) {
  const { pipeline, node } = await requireNode(deps.reader, c);
  const accepted = acceptedUpload(node, c.req.header("content-type"));
  const name = uploadName(c);
  const length = Number(c.req.header("content-length") ?? NaN);
  if (Number.isFinite(length)) checkUploadSize(deps, length);
  const body = c.req.raw.body;
  if (!body) throw new HttpError(400, "The request has no body; send the file as the raw request body");
  const quota = await uploadAllowance(deps.reader, pipeline.id, deps.storageQuotaBytes ?? DEFAULT_STORAGE_QUOTA_BYTES, {
    declared: Number.isFinite(length) ? length : undefined,
    maxBytes: deps.maxUploadBytes,
  });
  try {
    const upload = await nonEmptyBody(body, deps.uploadIdleTimeoutMs ?? 60_000);
    const key = assetKey(pipeline.id, node.id, randomUUID(), accepted.ext);
    const size = await storeUpload(deps, key, upload, accepted.contentType, quota);
    const file = { key, size, contentType: accepted.contentType, media: accepted.media, name };
    return c.json({ node: await recordUpload(deps, pipeline.id, node, file, { by: authorOf(c), client: clientOf(c) }) });
  } finally {
    quota.release();
  }
}

export function fileRoutes(deps: GatewayDeps) {
  const app = new Hono();

  app.put("/:id/asset", (c) => uploadAsset(deps, c));

  /**
   * A node's output bytes, with single-range support so players can seek. `?file=<name>` answers one of the
   * result's further files instead (output.files: a captions node's `vtt` and `srt`).
   */
  app.get("/:id/output", async (c) => {
    const { node } = await requireNode(deps.reader, c);
    if (!node.output?.s3Key) throw new HttpError(404, `Node has no output yet (status: ${node.status})`);
    const { key, contentType } = requestedFile(node.output, c.req.query("file"));
    return serveStored(deps, c, key, contentType, "Output");
  });

  /** An asset node's uploaded file as it was stored (before the node runs: the editor's thumbnail), served as outputs are. */
  app.get("/:id/asset", async (c) => {
    const { node } = await requireNode(deps.reader, c);
    const asset = node.asset as { source?: string; contentType?: string } | null;
    if (node.type !== "asset" || !asset?.source) throw new HttpError(404, "This node has no uploaded file");
    return serveStored(deps, c, asset.source, outputContentType(asset.contentType ?? "application/octet-stream"), "Uploaded file");
  });

  return app;
}

/** A stored file's bytes with single-range support (players seek), or a redirect to storage when outputs are presigned. */
async function serveStored(deps: GatewayDeps, c: Context, key: string, contentType: string, what: "Output" | "Uploaded file") {
  const info = await deps.storage.stat(key);
  if (!info) throw notFound(what);
  const delivery = deps.outputDelivery;
  if (delivery?.mode === "presigned" && deps.storage.presignGet) {
    // The role check is done: the browser fetches the bytes (ranges included) from storage itself.
    const url = await deps.storage.presignGet(key, { expiresInSeconds: delivery.expiresInSeconds, contentType });
    c.header("Cache-Control", "private, no-store");
    return c.redirect(url, 302);
  }
  const range = parseRange(c.req.header("range"), info.size);
  c.header("Accept-Ranges", "bytes");
  c.header("Content-Type", contentType);
  for (const [name, value] of Object.entries(OUTPUT_HEADERS)) c.header(name, value);
  if (range === "invalid") {
    c.header("Content-Range", `bytes */${info.size}`);
    return c.body(null, 416);
  }
  const { start, end } = range ?? { start: 0, end: info.size - 1 };
  c.header("Content-Length", String(end - start + 1));
  if (range) {
    c.status(206);
    c.header("Content-Range", `bytes ${start}-${end}/${info.size}`);
  }
  if (c.req.method === "HEAD" || info.size === 0) return c.body(null);
  return stream(c, async (out) => {
    const source = deps.storage.createReadStream(key, { start, end });
    out.onAbort(() => {
      source.destroy();
    });
    for await (const chunk of source) await out.write(chunk as Uint8Array);
  });
}
