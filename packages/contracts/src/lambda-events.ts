import { z } from "zod";
import { ComposeVideoConfig, MixAudioConfig } from "./config";
import { MediaFacts } from "./state";

/**
 * Invoke payloads of the ffmpeg Lambda functions (lambdas/video-merger, audio-mixer, video-composer) and
 * what they return: `{ s3_key, duration, size, cost }` plus what the node's output records.
 * Keys are storage keys (validated again by the function against the key rules), never URLs or paths;
 * `config` is the node's own config, checked with the node type's schema on both sides.
 */
const StorageKeyField = z.string().min(1).max(512);
/**
 * Probe facts of input files by their key, from the upstream nodes' stored outputs (optional; additive): the
 * function then does not probe those inputs again. A key without complete facts is probed as before.
 */
const InputFacts = z.record(StorageKeyField, MediaFacts);

export const VideoMergerEvent = z.strictObject({
  /** The segments, in play order. */
  input_keys: z.array(StorageKeyField).min(1).max(100),
  output_key: StorageKeyField,
  /** true / "always": re-encode regardless; false / "auto" (default): stream copy when compatible. */
  reencode: z.union([z.boolean(), z.enum(["auto", "always"])]).optional(),
  width: z.number().int().min(16).max(7680).optional(),
  height: z.number().int().min(16).max(4320).optional(),
  fps: z.number().min(1).max(120).optional(),
  input_facts: InputFacts.optional(),
});
export type VideoMergerEvent = z.infer<typeof VideoMergerEvent>;

export const AudioMixerEvent = z.strictObject({
  video_key: StorageKeyField,
  audio_key: StorageKeyField,
  output_key: StorageKeyField,
  config: MixAudioConfig.optional(),
  input_facts: InputFacts.optional(),
});
export type AudioMixerEvent = z.infer<typeof AudioMixerEvent>;

export const VideoComposerEvent = z.strictObject({
  background_key: StorageKeyField,
  overlay_keys: z.array(StorageKeyField).min(1).max(8),
  output_key: StorageKeyField,
  config: ComposeVideoConfig.optional(),
  input_facts: InputFacts.optional(),
});
export type VideoComposerEvent = z.infer<typeof VideoComposerEvent>;

export const LambdaMediaResult = z.looseObject({
  s3_key: z.string(),
  /** Seconds. */
  duration: z.number().nonnegative(),
  size: z.number().int().nonnegative(),
  /** US dollars: GB-seconds of the invocation. */
  cost: z.number().nonnegative(),
  width: z.number().int().positive().optional(),
  height: z.number().int().positive().optional(),
  video_codec: z.string().optional(),
  audio_codec: z.string().optional(),
  strategy: z.enum(["copy", "reencode"]).optional(),
  /** The output's probe facts, stored in the node's output for the nodes after it (additive). */
  facts: MediaFacts.optional(),
});
export type LambdaMediaResult = z.infer<typeof LambdaMediaResult>;
