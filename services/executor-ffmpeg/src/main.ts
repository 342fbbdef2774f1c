import { reapOrphans } from "@vp/media";
import { createUnavailableWork, runExecutor } from "@vp/runtime";
import { loadEnv } from "./env";
import { createAssetWork } from "./handlers/asset";
import { createMergeVideosWork } from "./handlers/merge-videos";

const env = loadEnv();
const unavailable = createUnavailableWork();

await runExecutor({
  service: "executor-ffmpeg",
  types: ["asset", "merge-videos", "mix-audio", "compose-video", "render-code"],
  env,
  // ffmpeg children of a previous process that was killed are still ours to stop.
  beforeStart: async ({ logger }) => {
    await reapOrphans(env.WORK_ROOT, { logger });
  },
  works: () => ({
    asset: createAssetWork(),
    "merge-videos": createMergeVideosWork({ ffmpegTimeoutMs: env.FFMPEG_TIMEOUT_MS }),
    // mix-audio, compose-video and render-code arrive with the media issue.
    "mix-audio": unavailable,
    "compose-video": unavailable,
    "render-code": unavailable,
  }),
});
