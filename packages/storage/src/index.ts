export type { Storage, PutOptions, ByteRange, ObjectStat, PresignOptions } from "./types";
export { createLocalStorage, type LocalStorageOptions } from "./local";
export { createS3Storage, type S3StorageOptions, type S3Storage } from "./s3";
export { createStorageFromEnv } from "./env";
export { validateKey, isValidKey, outputKey, assetKey, KEY_SEGMENT, MAX_KEY_LENGTH } from "./keys";
export { StorageKeyError, NotFoundError, TooLargeError } from "./errors";
