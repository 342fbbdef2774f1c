import { createReadStream as fsReadStream, createWriteStream } from "node:fs";
import { rename, rm, stat as fsStat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { randomUUID } from "node:crypto";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsCommand,
  S3Client,
  UploadPartCommand,
  type S3ClientConfig,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { MultipartUploadError, NotFoundError, StorageAccessError, StorageKeyError, TooLargeError } from "./errors";
import { KEY_SEGMENT, validateKey, validatePrefix } from "./keys";
import type { ByteRange, ClientUploads, DeletePrefixOptions, DeletePrefixResult, ListedObject, ObjectStat, PresignOptions, PutOptions, Storage } from "./types";

export interface S3StorageOptions {
  bucket: string;
  /** Prepended to every key (`videos/` -> `videos/pipelines/...`); segments follow the key rules. */
  prefix?: string;
  region?: string;
  /** An S3-compatible endpoint (MinIO, s3rver, LocalStack); default AWS. */
  endpoint?: string;
  /** Bucket in the path instead of the host name (what local S3 servers need). */
  forcePathStyle?: boolean;
  /** Default: the SDK's credential chain (env, shared config, instance role). */
  credentials?: S3ClientConfig["credentials"];
  /** Multipart part size for uploads; S3's minimum is 5 MiB. */
  partSizeBytes?: number;
  /** Parts uploaded in parallel. */
  queueSize?: number;
  /** A client to use instead of building one (tests, shared agents); it also presigns, as it is configured. */
  client?: S3Client;
}

const MIN_PART = 5 * 1024 * 1024;
/** S3 takes at most 10,000 parts per upload; a margin keeps a body that grows a little within it. */
const MAX_PARTS = 9_000;

/**
 * The part size for a body of about `expectedBytes` (a file's size, or a stream's maxBytes): the configured size, or
 * larger in whole MiB so the body fits S3's part count (a fixed 8 MiB part caps an object at about 78 GiB).
 */
export function partSizeFor(configured: number, expectedBytes?: number): number {
  if (!expectedBytes || expectedBytes <= configured * MAX_PARTS) return configured;
  return Math.ceil(expectedBytes / MAX_PARTS / (1024 * 1024)) * 1024 * 1024;
}

function isNotFound(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } } | undefined;
  return e?.name === "NoSuchKey" || e?.name === "NotFound" || e?.$metadata?.httpStatusCode === 404;
}

function normalizePrefix(prefix: string | undefined): string {
  const trimmed = (prefix ?? "").replace(/^\/+|\/+$/g, "");
  if (!trimmed) return "";
  for (const segment of trimmed.split("/")) {
    if (!KEY_SEGMENT.test(segment) || segment === "." || segment === "..") {
      throw new StorageKeyError(`S3 prefix segment ${JSON.stringify(segment)} breaks the key rules`);
    }
  }
  return `${trimmed}/`;
}

function checkRange(range: ByteRange | undefined): string | undefined {
  if (!range || (range.start === undefined && range.end === undefined)) return undefined;
  const { start, end } = range;
  for (const [name, v] of [
    ["start", start],
    ["end", end],
  ] as const) {
    if (v !== undefined && (!Number.isSafeInteger(v) || v < 0)) throw new RangeError(`range ${name} must be a non-negative integer`);
  }
  if (start !== undefined && end !== undefined && end < start) throw new RangeError("range end is before its start");
  return `bytes=${start ?? 0}-${end ?? ""}`;
}

/** Counts bytes through a pipeline and fails it with TooLargeError past the limit. */
function byteCounter(maxBytes: number | undefined, counted: { size: number }): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      counted.size += chunk.length;
      if (maxBytes !== undefined && counted.size > maxBytes) callback(new TooLargeError(maxBytes));
      else callback(null, chunk);
    },
  });
}

export interface S3Storage extends Storage {
  readonly backend: "s3";
  readonly bucket: string;
  readonly prefix: string;
  readonly client: S3Client;
  presignGet(key: string, options?: PresignOptions): Promise<string>;
  readonly clientUploads: ClientUploads;
}

/** The bucket a storage works on, with its client and upload settings; every key goes through objectKey. */
interface S3Bucket {
  client: S3Client;
  /** Signs URLs for browsers: the client's settings without checksums of a body it never sees (see s3Bucket). */
  presigner: S3Client;
  bucket: string;
  prefix: string;
  partSize: number;
  queueSize: number;
  /** The object's key in the bucket (prefix included), after the key rules. */
  objectKey(key: string): string;
}

function s3Bucket(options: S3StorageOptions): S3Bucket {
  const { bucket } = options;
  if (!bucket) throw new Error("S3 storage needs a bucket");
  const prefix = normalizePrefix(options.prefix);
  const config: S3ClientConfig = {
    region: options.region ?? "us-east-1",
    endpoint: options.endpoint,
    forcePathStyle: options.forcePathStyle,
    credentials: options.credentials,
    // A bucket in another region than S3_REGION answers 301: follow it instead of failing every call.
    followRegionRedirects: true,
  };
  const client = options.client ?? new S3Client(config);
  // By default the SDK puts a CRC32 of the (empty) body it signs into a presigned UploadPart URL, which S3 then
  // checks against the browser's bytes and refuses. Checksums only where S3 requires them (never for parts).
  const presigner = options.client ?? new S3Client({ ...config, requestChecksumCalculation: "WHEN_REQUIRED" });
  const partSize = Math.max(MIN_PART, options.partSizeBytes ?? 8 * 1024 * 1024);
  const queueSize = Math.max(1, options.queueSize ?? 4);
  return { client, presigner, bucket, prefix, partSize, queueSize, objectKey: (key: string) => prefix + validateKey(key) };
}

/**
 * Objects in one S3 bucket (under an optional prefix), with the same key rules as the local backend. Uploads
 * go through lib-storage's Upload (multipart above one part, so a 2 GiB asset never sits in memory); reads
 * stream GetObject bodies, with HTTP ranges for seeking players; presignGet hands a browser a time-limited URL.
 * A PUT or a completed multipart upload replaces an object atomically, as the interface promises.
 */
export function createS3Storage(options: S3StorageOptions): S3Storage {
  const b = s3Bucket(options);
  const storage: S3Storage = {
    backend: "s3",
    bucket: b.bucket,
    prefix: b.prefix,
    client: b.client,
    put: async (key, body, putOptions: PutOptions = {}) => putObject(b, key, body, putOptions),
    putFile: async (key, localPath, putOptions = {}) => putFileObject(b, key, localPath, putOptions),
    download: async (key, localPath) => downloadObject(b, key, localPath),
    createReadStream: (key, range) => readStream(b, key, range),
    getBuffer: async (key, getOptions = {}) => getBuffer(b, key, getOptions),
    stat: async (key): Promise<ObjectStat | null> => statObject(b, key),
    delete: async (key) => {
      await b.client.send(new DeleteObjectCommand({ Bucket: b.bucket, Key: b.objectKey(key) }));
    },
    exists: async (key) => (await storage.stat(key)) !== null,
    list: (listPrefix) => listObjects(b, listPrefix),
    deletePrefix: async (deletePrefixOf, deleteOptions = {}) => deleteUnder(b, (p) => storage.list(p), deletePrefixOf, deleteOptions),
    presignGet: async (key, presignOptions = {}) => presignGet(b, key, presignOptions),
    clientUploads: clientUploads(b),
  };
  return storage;
}

async function upload(b: S3Bucket, key: string, body: Readable | Buffer | Uint8Array, contentType: string | undefined, expectedBytes?: number) {
  const up = new Upload({
    client: b.client,
    params: { Bucket: b.bucket, Key: b.objectKey(key), Body: body, ContentType: contentType },
    partSize: partSizeFor(b.partSize, expectedBytes),
    queueSize: b.queueSize,
    leavePartsOnError: false,
  });
  try {
    await up.done();
  } catch (error) {
    // A body that failed (too large, a broken upload stream) aborts the multipart upload: nothing is stored.
    await up.abort().catch(() => undefined);
    throw error;
  }
}

async function getObject(b: S3Bucket, key: string, range?: string) {
  const k = b.objectKey(key);
  try {
    return await b.client.send(new GetObjectCommand({ Bucket: b.bucket, Key: k, Range: range }));
  } catch (error) {
    if (isNotFound(error)) throw new NotFoundError(key, { cause: error });
    throw error;
  }
}

async function putObject(b: S3Bucket, key: string, body: Readable | Buffer | Uint8Array, putOptions: PutOptions): Promise<ObjectStat> {
  b.objectKey(key);
  const { maxBytes, contentType } = putOptions;
  if (body instanceof Uint8Array) {
    if (maxBytes !== undefined && body.byteLength > maxBytes) throw new TooLargeError(maxBytes);
    await upload(b, key, Buffer.from(body.buffer, body.byteOffset, body.byteLength), contentType);
    return { size: body.byteLength };
  }
  const counted = { size: 0 };
  const counter = byteCounter(maxBytes, counted);
  // The source's errors (a client that hung up mid-upload) must fail the upload too.
  body.once("error", (error) => counter.destroy(error));
  let failure: unknown;
  counter.once("error", (error) => (failure ??= error));
  try {
    await upload(b, key, body.pipe(counter), contentType, maxBytes);
  } catch (error) {
    throw failure ?? error;
  }
  if (failure) throw failure;
  return { size: counted.size };
}

async function putFileObject(b: S3Bucket, key: string, localPath: string, putOptions: Omit<PutOptions, "maxBytes">): Promise<ObjectStat> {
  b.objectKey(key);
  const { size } = await fsStat(localPath);
  await upload(b, key, fsReadStream(localPath), putOptions.contentType, size);
  return { size };
}

async function downloadObject(b: S3Bucket, key: string, localPath: string): Promise<ObjectStat> {
  const response = await getObject(b, key);
  const counted = { size: 0 };
  // Written next to the destination and renamed, so a failed download never leaves half a file.
  const tmp = join(dirname(localPath), `.${basename(localPath)}.${randomUUID()}.part`);
  try {
    await pipeline(response.Body as Readable, byteCounter(undefined, counted), createWriteStream(tmp, { flags: "wx" }));
    await rename(tmp, localPath);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
  return { size: counted.size };
}

/** Key and range errors throw at once; the object is requested when the stream is first read. */
function readStream(b: S3Bucket, key: string, range: ByteRange | undefined): Readable {
  b.objectKey(key);
  const rangeHeader = checkRange(range);
  const source: { body?: Readable } = {};
  const stream = Readable.from(rangeChunks(b, key, range, rangeHeader, source), { objectMode: false });
  stream.once("close", () => source.body?.destroy());
  return stream;
}

/** The object's bytes in `range`; `source.body` is the response body, for the stream to destroy when it closes. */
async function* rangeChunks(b: S3Bucket, key: string, range: ByteRange | undefined, rangeHeader: string | undefined, source: { body?: Readable }) {
  const response = await getObject(b, key, rangeHeader);
  const body = response.Body as Readable;
  source.body = body;
  const served = /^bytes (\d+)-(\d+)\//.exec(response.ContentRange ?? "");
  const wantStart = range?.start ?? 0;
  const wantEnd = range?.end;
  if (!rangeHeader || (served && Number(served[1]) === wantStart && (wantEnd === undefined || Number(served[2]) <= wantEnd))) {
    yield* body;
    return;
  }
  // A server that served more than the range (some S3 emulators ignore "bytes=0-0"): cut it out here.
  let skip = wantStart - (served ? Number(served[1]) : 0);
  let left = range?.end !== undefined ? range.end - skip + 1 : Number.POSITIVE_INFINITY;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    let part = chunk;
    if (skip > 0) {
      const drop = Math.min(skip, part.length);
      part = part.subarray(drop);
      skip -= drop;
    }
    if (part.length > left) part = part.subarray(0, left);
    if (part.length > 0) {
      left -= part.length;
      yield part;
    }
    if (left <= 0) break;
  }
}

async function getBuffer(b: S3Bucket, key: string, getOptions: { maxBytes?: number }): Promise<Buffer> {
  const response = await getObject(b, key);
  const body = response.Body as Readable;
  const { maxBytes } = getOptions;
  if (maxBytes !== undefined && (response.ContentLength ?? 0) > maxBytes) {
    body.destroy();
    throw new TooLargeError(maxBytes);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (maxBytes !== undefined && size > maxBytes) {
      body.destroy();
      throw new TooLargeError(maxBytes);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

async function statObject(b: S3Bucket, key: string): Promise<ObjectStat | null> {
  try {
    const head = await b.client.send(new HeadObjectCommand({ Bucket: b.bucket, Key: b.objectKey(key) }));
    return { size: head.ContentLength ?? 0 };
  } catch (error) {
    if (isNotFound(error)) return null;
    if ((error as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode === 403) throw new StorageAccessError(key, { cause: error });
    throw error;
  }
}

async function* listObjects(b: S3Bucket, listPrefix: string): AsyncGenerator<ListedObject> {
  const full = b.prefix + validatePrefix(listPrefix);
  // ListObjects (v1) paged by Marker, the last key seen: keys come in order, and no continuation token is
  // involved (s3rver makes its v2 tokens with a cipher OpenSSL 3 no longer offers, failing every long listing).
  let after: string | undefined;
  for (;;) {
    const page = await b.client.send(new ListObjectsCommand({ Bucket: b.bucket, Prefix: full, Marker: after }));
    const contents = page.Contents ?? [];
    for (const object of contents) {
      if (object.Key?.startsWith(full)) yield { key: object.Key.slice(b.prefix.length), size: object.Size ?? 0 };
    }
    const last = contents.at(-1)?.Key;
    if (!page.IsTruncated || !last) return;
    after = last;
  }
}

async function deleteUnder(
  b: S3Bucket,
  list: (prefix: string) => AsyncIterable<ListedObject>,
  deletePrefixOf: string,
  deleteOptions: DeletePrefixOptions,
): Promise<DeletePrefixResult> {
  const keep = deleteOptions.keep ?? new Set<string>();
  const result = { deleted: 0, bytes: 0, kept: [] as ListedObject[] };
  let batch: ListedObject[] = [];
  // DeleteObjects takes up to 1,000 keys a request.
  const flush = async () => {
    if (!batch.length) return;
    const objects = batch;
    batch = [];
    const response = await b.client.send(
      new DeleteObjectsCommand({ Bucket: b.bucket, Delete: { Objects: objects.map((o) => ({ Key: b.prefix + o.key })), Quiet: true } }),
    );
    const failed = response.Errors ?? [];
    if (failed.length) {
      throw new Error(`S3 refused to delete ${failed.length} object(s) under ${deletePrefixOf}: ${failed[0]!.Code ?? ""} ${failed[0]!.Message ?? ""}`.trim());
    }
    result.deleted += objects.length;
    result.bytes += objects.reduce((sum, o) => sum + o.size, 0);
  };
  // Listed whole before deleting: a continuation token need not stay valid while its listing shrinks.
  const listed: ListedObject[] = [];
  for await (const object of list(deletePrefixOf)) listed.push(object);
  for (const object of listed) {
    if (keep.has(object.key)) result.kept.push(object);
    else batch.push(object);
    if (batch.length >= 1000) await flush();
  }
  await flush();
  return result;
}

async function presignGet(b: S3Bucket, key: string, presignOptions: PresignOptions): Promise<string> {
  const { expiresInSeconds = 3600, contentType, downloadName } = presignOptions;
  const command = new GetObjectCommand({
    Bucket: b.bucket,
    Key: b.objectKey(key),
    ResponseContentType: contentType,
    ResponseContentDisposition: downloadName ? `attachment; filename="${downloadName.replace(/[^A-Za-z0-9._-]/g, "_")}"` : undefined,
  });
  return getSignedUrl(b.client, command, { expiresIn: expiresInSeconds });
}

const errorCode = (error: unknown) => (error as { name?: string; Code?: string } | undefined)?.Code ?? (error as { name?: string } | undefined)?.name ?? "";

/** What S3 says when it refuses to assemble an upload, as a MultipartUploadError; anything else as it is. */
function multipartRefusal(error: unknown): unknown {
  const code = errorCode(error);
  const reasons: Record<string, string> = {
    NoSuchUpload: "the upload does not exist (it was aborted, completed, or expired)",
    InvalidPart: "a listed part was not uploaded, or its ETag differs from the one its upload answered",
    InvalidPartOrder: "the parts are not listed in ascending order",
    EntityTooSmall: "a part other than the last is smaller than 5 MiB",
  };
  const reason = reasons[code];
  return reason ? new MultipartUploadError(code, `S3 refused the multipart upload: ${reason}`, { cause: error }) : error;
}

function clientUploads(b: S3Bucket): ClientUploads {
  return {
    partSize: (size) => partSizeFor(b.partSize, size),
    async start(key, { contentType }) {
      const created = await b.client.send(new CreateMultipartUploadCommand({ Bucket: b.bucket, Key: b.objectKey(key), ContentType: contentType }));
      if (!created.UploadId) throw new Error(`S3 started no multipart upload for ${key} (no UploadId in its answer)`);
      return { uploadId: created.UploadId };
    },
    async presignPart(key, uploadId, part, expiresInSeconds) {
      // ContentLength is signed: S3 takes exactly this many bytes with the URL, so a client cannot store more than it declared.
      const command = new UploadPartCommand({ Bucket: b.bucket, Key: b.objectKey(key), UploadId: uploadId, PartNumber: part.number, ContentLength: part.size });
      return getSignedUrl(b.presigner, command, { expiresIn: expiresInSeconds });
    },
    async complete(key, uploadId, parts) {
      const command = new CompleteMultipartUploadCommand({
        Bucket: b.bucket,
        Key: b.objectKey(key),
        UploadId: uploadId,
        MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.number, ETag: p.etag })) },
      });
      try {
        await b.client.send(command);
      } catch (error) {
        throw multipartRefusal(error);
      }
    },
    async abort(key, uploadId) {
      try {
        await b.client.send(new AbortMultipartUploadCommand({ Bucket: b.bucket, Key: b.objectKey(key), UploadId: uploadId }));
      } catch (error) {
        if (errorCode(error) !== "NoSuchUpload") throw error;
      }
    },
    async head(key) {
      try {
        const head = await b.client.send(new HeadObjectCommand({ Bucket: b.bucket, Key: b.objectKey(key) }));
        return { size: head.ContentLength ?? 0, contentType: head.ContentType };
      } catch (error) {
        if (isNotFound(error)) return null;
        if ((error as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode === 403) throw new StorageAccessError(key, { cause: error });
        throw error;
      }
    },
  };
}
