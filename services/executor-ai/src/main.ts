import { createUnavailableWork, runExecutor } from "@vp/runtime";
import { loadEnv } from "./env";

// Provider clients (HeyGen, ElevenLabs, Veo 3, Runway, local) arrive in a later issue; until then the
// consumers run and fail each job at once with that reason.
const unavailable = createUnavailableWork();

await runExecutor({
  service: "executor-ai",
  types: ["talking-head", "generate-voiceover", "generate-animation"],
  env: loadEnv(),
  works: () => ({ "talking-head": unavailable, "generate-voiceover": unavailable, "generate-animation": unavailable }),
});
