import { join } from "node:path";
import { VideoMergerEvent, type LambdaMediaResult } from "@vp/contracts";
import { mergeVideos } from "@vp/media";
import { fromEnvironment, inWorkDir, LambdaEventError, localName, mediaResult, parseEvent, type LambdaDeps } from "../shared/runtime";

export { LambdaEventError as VideoMergerEventError };
export type { VideoMergerEvent };

/**
 * video-merger (FFmpeg concatenation): downloads the segments under generated names, joins them with
 * the shared merge core (stream copy when compatible, else one re-encode), uploads the MP4.
 */
export function createHandler(deps: LambdaDeps) {
  const { storage } = deps;
  return async function handler(event: unknown): Promise<LambdaMediaResult> {
    const started = performance.now();
    const e = parseEvent(VideoMergerEvent, event, (p) => [
      ...p.input_keys.map((k, i): [string, string] => [`input_keys[${i}]`, k]),
      ["output_key", p.output_key],
    ]);
    const mode = e.reencode === true || e.reencode === "always" ? "always" : "auto";
    return inWorkDir(deps, "video-merger", async (dir) => {
      const inputs: string[] = [];
      for (const [i, key] of e.input_keys.entries()) {
        const local = localName(dir, `seg-${String(i).padStart(3, "0")}`, key, ".mp4");
        await storage.download(key, local);
        inputs.push(local);
      }
      const output = join(dir, "output.mp4");
      const merged = await mergeVideos({
        inputs,
        // The segments' stored probe facts, when the executor sent them: no ffprobe of those inputs.
        facts: e.input_keys.map((key) => e.input_facts?.[key]),
        output,
        workDir: dir,
        mode,
        width: e.width,
        height: e.height,
        fps: e.fps,
        timeoutMs: deps.ffmpegTimeoutMs,
      });
      const { size } = await storage.putFile(e.output_key, output, { contentType: "video/mp4" });
      return mediaResult(e.output_key, size, merged.probe, started, deps, { strategy: merged.strategy });
    });
  };
}

export const handler = fromEnvironment(createHandler);
export default handler;
