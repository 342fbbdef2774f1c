export { MediaError, FfmpegError, CancelledError, TimeoutError, isInvalidMediaError } from "./errors";
export { runFfmpeg, scrubPaths, stderrTail, FFMPEG_PID_FILE, type RunFfmpegOptions, type MediaLogger } from "./run";
export {
  probe,
  parseProbeOutput,
  parseRate,
  type ProbeResult,
  type ProbeOptions,
  type VideoStreamInfo,
  type AudioStreamInfo,
} from "./probe";
export {
  mergeVideos,
  compatible,
  reencodeTarget,
  buildCopyArgs,
  buildReencodeArgs,
  type MergeVideosOptions,
  type MergeVideosResult,
  type MergeMode,
  type MergeStrategy,
  type ReencodeTarget,
} from "./merge";
export { makeTestClip, type TestClipOptions } from "./clips";
export { reapOrphans, type ReapResult } from "./reap";
export { fileArg, concatLine, concatList, SAFE_FILE_NAME } from "./paths";
export { COMPUTE_COST_PER_SECOND_USD, computeCost } from "./cost";
