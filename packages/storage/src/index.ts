export type { Storage, PutOptions, ByteRange, ObjectStat } from "./types";
export { createLocalStorage, type LocalStorageOptions } from "./local";
export { validateKey, isValidKey, outputKey, assetKey, KEY_SEGMENT, MAX_KEY_LENGTH } from "./keys";
export { StorageKeyError, NotFoundError, TooLargeError } from "./errors";
