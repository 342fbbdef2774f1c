import { join } from "node:path";
import { VideoComposerEvent, type LambdaMediaResult } from "@vp/contracts";
import { composeVideo } from "@vp/media";
import { fromEnvironment, inWorkDir, LambdaEventError, localName, mediaResult, parseEvent, type LambdaDeps } from "../shared/runtime";

export { LambdaEventError as VideoComposerEventError };
export type { VideoComposerEvent };

/**
 * video-composer (FFmpeg picture-in-picture compositing): downloads the background and the
 * overlays under generated names, lays the overlays over the background with the shared compose core,
 * uploads the MP4.
 */
export function createHandler(deps: LambdaDeps) {
  const { storage } = deps;
  return async function handler(event: unknown): Promise<LambdaMediaResult> {
    const started = performance.now();
    const e = parseEvent(VideoComposerEvent, event, (p) => [
      ["background_key", p.background_key],
      ...p.overlay_keys.map((k, i): [string, string] => [`overlay_keys[${i}]`, k]),
      ["output_key", p.output_key],
    ]);
    return inWorkDir(deps, "video-composer", async (dir) => {
      const background = localName(dir, "background", e.background_key, ".mp4");
      const overlays = e.overlay_keys.map((k, i) => localName(dir, `overlay-${String(i).padStart(3, "0")}`, k, ".mp4"));
      await Promise.all([storage.download(e.background_key, background), ...e.overlay_keys.map((k, i) => storage.download(k, overlays[i]!))]);
      const output = join(dir, "output.mp4");
      const config = e.config ?? {};
      const composed = await composeVideo({
        background,
        overlays,
        specs: config.overlays,
        audio: config.audio,
        output,
        workDir: dir,
        facts: { background: e.input_facts?.[e.background_key], overlays: e.overlay_keys.map((key) => e.input_facts?.[key]) },
        timeoutMs: deps.ffmpegTimeoutMs,
      });
      const { size } = await storage.putFile(e.output_key, output, { contentType: "video/mp4" });
      return mediaResult(e.output_key, size, composed.probe, started, deps);
    });
  };
}

export const handler = fromEnvironment(createHandler);
export default handler;
