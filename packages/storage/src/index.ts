export type { Storage, ClientUploads, PutOptions, ByteRange, ObjectStat, PresignOptions, ListedObject, DeletePrefixOptions, DeletePrefixResult } from "./types";
export { createLocalStorage, type LocalStorageOptions } from "./local";
export { createS3Storage, type S3StorageOptions, type S3Storage } from "./s3";
export { createStorageFromEnv } from "./env";
export { validateKey, isValidKey, outputKey, assetKey, validatePrefix, pipelinePrefix, nodePrefix, ownerOfKey, KEY_SEGMENT, MAX_KEY_LENGTH } from "./keys";
export { StorageKeyError, NotFoundError, TooLargeError, StorageAccessError, MultipartUploadError } from "./errors";
