import { isInvalidMediaError } from "@vp/media";
import { NotFoundError, StorageKeyError } from "@vp/storage";
import { WorkInputError } from "@vp/runtime";

/**
 * The one class the job runner recognises as "no retry can fix this" (it terms the message and fails the
 * node with this message). Defined by @vp/runtime next to the runner; re-exported here so handlers and
 * their tests name it from one place.
 */
export { WorkInputError };

/**
 * Turns what the media and storage layers throw about *the input* into a WorkInputError with `context`
 * in front of the reason: a file that is not media, ffmpeg rejecting the data, a key that breaks the key
 * rules or names nothing. Everything else (cancel, timeout, disk, a crashed ffmpeg) is returned as it is,
 * so the bus retries it.
 */
export function asInputError(error: unknown, context: string): unknown {
  if (error instanceof WorkInputError) return error;
  if (isInvalidMediaError(error) || error instanceof StorageKeyError || error instanceof NotFoundError) {
    return new WorkInputError(`${context}: ${(error as Error).message}`, { cause: error });
  }
  return error;
}
