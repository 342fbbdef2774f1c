import { join } from "node:path";
import { AudioMixerEvent, type LambdaMediaResult } from "@vp/contracts";
import { mixAudio } from "@vp/media";
import { fromEnvironment, inWorkDir, LambdaEventError, localName, mediaResult, parseEvent, type LambdaDeps } from "../shared/runtime";

export { LambdaEventError as AudioMixerEventError };
export type { AudioMixerEvent };

/**
 * audio-mixer (FFmpeg audio track replacement): downloads the video and the audio under
 * generated names, replaces (or ducks) the video's audio with the shared mix core, uploads the MP4.
 */
export function createHandler(deps: LambdaDeps) {
  const { storage } = deps;
  return async function handler(event: unknown): Promise<LambdaMediaResult> {
    const started = performance.now();
    const e = parseEvent(AudioMixerEvent, event, (p) => [
      ["video_key", p.video_key],
      ["audio_key", p.audio_key],
      ["output_key", p.output_key],
    ]);
    return inWorkDir(deps, "audio-mixer", async (dir) => {
      const video = localName(dir, "video", e.video_key, ".mp4");
      const audio = localName(dir, "audio", e.audio_key, ".m4a");
      await Promise.all([storage.download(e.video_key, video), storage.download(e.audio_key, audio)]);
      const output = join(dir, "output.mp4");
      const config = e.config ?? {};
      const mixed = await mixAudio({
        video,
        audio,
        output,
        workDir: dir,
        facts: { video: e.input_facts?.[e.video_key], audio: e.input_facts?.[e.audio_key] },
        lengthMismatch: config.lengthMismatch,
        mode: config.mode,
        originalGain: config.originalGain,
        startSeconds: config.startSeconds,
        fadeInSeconds: config.fadeInSeconds,
        fadeOutSeconds: config.fadeOutSeconds,
        timeoutMs: deps.ffmpegTimeoutMs,
      });
      const { size } = await storage.putFile(e.output_key, output, { contentType: "video/mp4" });
      return mediaResult(e.output_key, size, mixed.probe, started, deps);
    });
  };
}

export const handler = fromEnvironment(createHandler);
export default handler;
