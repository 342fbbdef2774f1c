/** The media itself is unusable (not a media file, a missing stream, inputs that cannot be merged). */
export class MediaError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "MediaError";
  }
}

/**
 * stderr lines by which ffmpeg says the *input data* is bad: running it again cannot help. Anything else
 * (a full disk, memory, a signal) may well pass on another attempt.
 */
const INVALID_INPUT_PATTERNS: readonly RegExp[] = [
  /Invalid data found when processing input/i,
  /moov atom not found/i,
  /could not find codec parameters/i,
  /does not contain any stream/i,
  /Output file #?\d* ?does not contain any stream/i,
  /Stream specifier .* matches no streams/i,
  /Error while decoding stream/i,
  /Invalid NAL unit size/i,
  /Decoder \(codec .*\) not found/i,
  /Unsupported codec/i,
  /Invalid frame dimensions/i,
  /Output file is empty, nothing was encoded/i,
  /Unknown input format/i,
  /partial file/i,
  /corrupt input packet/i,
  /Format not on whitelist/i,
  /Format not allowed/i,
  /Impossible to open/i,
  /stream ends prematurely/i,
];

/** ffmpeg ran and exited non-zero. `message` is the meaningful end of its stderr (no banner, no stats). */
export class FfmpegError extends Error {
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Last non-empty stderr lines, local paths reduced to file names. */
  readonly stderrTail: string;
  constructor(message: string, details: { exitCode: number | null; signal?: NodeJS.Signals | null; stderrTail: string }, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "FfmpegError";
    this.exitCode = details.exitCode;
    this.signal = details.signal ?? null;
    this.stderrTail = details.stderrTail;
  }

  /**
   * True when ffmpeg exited on its own (exit code 1, not a signal; 255 is ffmpeg's "interrupted") and said
   * its input data is invalid: a retry would fail the same way.
   */
  get invalidInput(): boolean {
    if (this.exitCode === null || this.exitCode === 255 || this.signal) return false;
    return INVALID_INPUT_PATTERNS.some((p) => p.test(this.stderrTail));
  }
}

/** The run was aborted through its AbortSignal; its process group was killed. */
export class CancelledError extends Error {
  constructor(message = "ffmpeg run cancelled", options?: { cause?: unknown }) {
    super(message, options);
    this.name = "CancelledError";
  }
}

/** The run took longer than its timeoutMs; its process group was killed. */
export class TimeoutError extends Error {
  readonly timeoutMs: number;
  constructor(timeoutMs: number, options?: { cause?: unknown }) {
    super(`ffmpeg run exceeded its time limit of ${timeoutMs} ms`, options);
    this.name = "TimeoutError";
    this.timeoutMs = timeoutMs;
  }
}

/** Whether an error means the input media is bad (no retry can fix it), as opposed to a run that failed. */
export function isInvalidMediaError(error: unknown): boolean {
  return error instanceof MediaError || (error instanceof FfmpegError && error.invalidInput);
}
