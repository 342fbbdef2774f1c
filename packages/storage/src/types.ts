import type { Readable } from "node:stream";

export interface PutOptions {
  /** Abort with TooLargeError once the body grows past this many bytes; nothing is left behind. */
  maxBytes?: number;
  /** Kept by backends that store metadata (S3); the local backend ignores it. */
  contentType?: string;
}

export interface ByteRange {
  /** First byte, default 0. */
  start?: number;
  /** Last byte, inclusive (as in an HTTP Range header); default the end of the object. */
  end?: number;
}

export interface ObjectStat {
  size: number;
}

/** One object found by list. */
export interface ListedObject {
  key: string;
  size: number;
}

export interface DeletePrefixOptions {
  /** Keys under the prefix that stay (still referenced elsewhere, e.g. by the result cache). */
  keep?: ReadonlySet<string>;
}

export interface DeletePrefixResult {
  /** Objects deleted and their bytes. */
  deleted: number;
  bytes: number;
  /** Objects left because `keep` named them, with their sizes. */
  kept: ListedObject[];
}

/**
 * Object storage addressed by keys (see validateKey), never by paths. Local disk and S3 implement the same
 * interface, so nothing outside a backend knows where bytes live; local files enter and leave only
 * through putFile and download, into paths the caller chose.
 *
 * Every method rejects an invalid key with StorageKeyError; reads of a missing key reject with NotFoundError.
 */
export interface Storage {
  readonly backend: "local" | "s3";
  /** Stores a body atomically: readers see the old object or the whole new one, never a partial one. */
  put(key: string, body: Readable | Buffer | Uint8Array, options?: PutOptions): Promise<ObjectStat>;
  /** Stores a copy of a local file. */
  putFile(key: string, localPath: string, options?: Omit<PutOptions, "maxBytes">): Promise<ObjectStat>;
  /** Writes the object to a local file (created or replaced). */
  download(key: string, localPath: string): Promise<ObjectStat>;
  /**
   * Streams the object or a byte range of it. Key errors throw at once; a missing object surfaces as a
   * NotFoundError on the stream's 'error' event (call stat first when you must know before streaming).
   */
  createReadStream(key: string, range?: ByteRange): Readable;
  /** Reads a whole (small) object into memory; TooLargeError past maxBytes. */
  getBuffer(key: string, options?: { maxBytes?: number }): Promise<Buffer>;
  /** null when there is no object at the key. */
  stat(key: string): Promise<ObjectStat | null>;
  /** Idempotent: deleting a missing key is not an error. */
  delete(key: string): Promise<void>;
  exists(key: string): Promise<boolean>;
  /**
   * Every object whose key starts with `prefix` (see validatePrefix: segments ending in `/`), in no set order.
   * Objects a put is still writing are not listed until they are whole.
   */
  list(prefix: string): AsyncIterable<ListedObject>;
  /**
   * Deletes every object under `prefix` except the keys in `keep`. Idempotent; an object a put commits after
   * the listing may survive, so a caller racing writers deletes after the writers' rows are gone and the
   * writers check for their row after writing (see the job runner).
   */
  deletePrefix(prefix: string, options?: DeletePrefixOptions): Promise<DeletePrefixResult>;
  /**
   * A time-limited URL a browser can GET the object from directly (S3 only; the local backend has none and
   * its objects are served through the gateway's output route).
   */
  presignGet?(key: string, options?: PresignOptions): Promise<string>;
  /** Multipart uploads whose parts a browser sends straight to storage (S3 only; the local backend has none). */
  readonly clientUploads?: ClientUploads;
}

/**
 * Multipart uploads whose parts a client sends to storage itself, through presigned UploadPart URLs, while the
 * caller starts, completes and aborts them with its own credentials. The object appears only on completion,
 * whole; an upload neither completed nor aborted keeps its parts until the bucket's lifecycle rule aborts it.
 */
export interface ClientUploads {
  /** The size of every part but the last for an object of `size` bytes: the backend's part size, larger when S3's part count would not do. */
  partSize(size: number): number;
  /** Starts an upload to `key`; the object gets this Content-Type. */
  start(key: string, options: { contentType: string }): Promise<{ uploadId: string }>;
  /** A URL that takes one PUT of exactly `part.size` bytes as part `part.number`, until it expires. */
  presignPart(key: string, uploadId: string, part: { number: number; size: number }, expiresInSeconds: number): Promise<string>;
  /** Assembles the parts (ascending numbers, the ETags their PUTs answered); MultipartUploadError with the store's reason when it refuses. */
  complete(key: string, uploadId: string, parts: ReadonlyArray<{ number: number; etag: string }>): Promise<void>;
  /** Drops the upload and its stored parts; an upload that no longer exists is not an error. */
  abort(key: string, uploadId: string): Promise<void>;
  /** The stored object's size and Content-Type; null when there is none. */
  head(key: string): Promise<{ size: number; contentType: string | undefined } | null>;
}

export interface PresignOptions {
  /** Default one hour. */
  expiresInSeconds?: number;
  /** Content-Type the response carries. */
  contentType?: string;
  /** Offer the object as a download under this name. */
  downloadName?: string;
}
