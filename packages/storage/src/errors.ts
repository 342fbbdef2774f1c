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
