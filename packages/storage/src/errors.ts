/** A key that breaks the key rules or would resolve outside the storage root. Never retryable. */
export class StorageKeyError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StorageKeyError";
  }
}

/** No object under this key. */
export class NotFoundError extends Error {
  readonly key: string;
  constructor(key: string, options?: { cause?: unknown }) {
    super(`no stored object at ${key}`, options);
    this.name = "NotFoundError";
    this.key = key;
  }
}

/** A body grew past `maxBytes`; nothing was stored. */
export class TooLargeError extends Error {
  readonly maxBytes: number;
  constructor(maxBytes: number, options?: { cause?: unknown }) {
    super(`body exceeds the limit of ${maxBytes} bytes`, options);
    this.name = "TooLargeError";
    this.maxBytes = maxBytes;
  }
}

/**
 * S3 refused to say whether an object exists (403 to HeadObject). Without s3:ListBucket on the bucket, S3 answers 403
 * instead of 404 for a key that does not exist, so the role lacks a permission the product needs.
 */
export class StorageAccessError extends Error {
  readonly key: string;
  constructor(key: string, options?: { cause?: unknown }) {
    super(
      `S3 answered 403 (access denied) when asked whether ${key} exists: grant the role s3:ListBucket on the bucket ` +
        "(S3 answers 403 instead of 404 for a missing key without it) and s3:GetObject on its objects; see docs/storage.md",
      options,
    );
    this.name = "StorageAccessError";
    this.key = key;
  }
}

/**
 * The store refused to assemble or take part of a multipart upload: `code` is S3's (NoSuchUpload: it was aborted,
 * completed or never existed; InvalidPart: a part is missing or its ETag differs; InvalidPartOrder; EntityTooSmall:
 * a part but the last is under 5 MiB).
 */
export class MultipartUploadError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "MultipartUploadError";
    this.code = code;
  }
}
