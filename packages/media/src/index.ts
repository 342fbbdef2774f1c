export { MediaError, FfmpegError, CancelledError, TimeoutError, isInvalidMediaError } from "./errors";
export { runFfmpeg, scrubPaths, stderrTail, FFMPEG_PID_FILE, type RunFfmpegOptions, type RunFfmpegResult, type MediaLogger } from "./run";
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
export {
  probeInput,
  probeOfFacts,
  factsOfProbe,
  describeCopiedOutput,
  MP4_FORMAT_NAME,
  type MediaFacts,
} from "./facts";
export { readMp4Header, moovReservation, moovFrontArgs, moovReservationTooSmall, type Mp4Header } from "./mp4";
export { watchFfprobe, type FfprobeWatch } from "./probe-watch";
export { makeTestClip, makeSpeechClip, type TestClipOptions, type SpeechClipOptions } from "./clips";
export { claimWorkRoot, prepareWorkRoot, reapOrphans, WorkRootInUseError, WORK_ROOT_OWNER_FILE, type ReapResult } from "./reap";
export { fileArg, inputArgs, concatLine, concatList, SAFE_FILE_NAME, SAFE_INPUT_FORMATS } from "./paths";
export {
  computeCost,
  lambdaCost,
  DEFAULT_CPU_SECOND_RATE_USD,
  LAMBDA_GB_SECOND_USD,
  LAMBDA_REQUEST_USD,
} from "./cost";
export {
  mixAudio,
  planMix,
  buildMixAudioArgs,
  DEFAULT_ORIGINAL_GAIN,
  type MixAudioOptions,
  type MixAudioResult,
  type MixPlan,
  type LengthMismatch,
  type MixMode,
} from "./mix";
export { composeVideo, buildComposeArgs, MAX_OVERLAYS, type ComposeVideoOptions, type ComposeVideoResult, type ComposeAudio } from "./compose";
export { overlayLayout, type OverlaySpec, type OverlayLayout, type OverlayPosition } from "./layout";
export {
  streamSummary,
  audioLevel,
  decodeFrame,
  regionDifference,
  streamHash,
  type StreamSummary,
  type AudioLevel,
  type Frame,
} from "./analyze";
export {
  burnCaptions,
  buildBurnCaptionsArgs,
  captionsToAss,
  captionsToSrt,
  captionsToWebVtt,
  escapeFilterValue,
  layoutCues,
  wrapCaption,
  CAPTION_FONT,
  DEFAULT_MAX_CHARS_PER_LINE,
  MAX_CAPTION_LINES,
  type BurnCaptionsOptions,
  type BurnCaptionsResult,
  type CaptionPosition,
  type CaptionStyle,
  type Cue,
} from "./captions";
