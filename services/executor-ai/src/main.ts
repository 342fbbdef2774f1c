import { prepareWorkRoot } from "@vp/media";
import { runExecutor } from "@vp/runtime";
import { createClients } from "./clients";
import { loadEnv } from "./env";
import type { AiWorkDeps } from "./handlers/common";
import { createGenerateAnimationWork } from "./handlers/generate-animation";
import { createGenerateVoiceoverWork } from "./handlers/generate-voiceover";
import { createPatience } from "./handlers/patient";
import { createTalkingHeadWork } from "./handlers/talking-head";
import { createPricing, loadPriceTable } from "./pricing";

const env = loadEnv();

await runExecutor({
  service: "executor-ai",
  env,
  // espeak-ng/ffmpeg children of a previous process that was killed are still ours to stop.
  beforeStart: async ({ logger }) => {
    // Refuses a work root another live executor owns, then reaps what a killed predecessor left.
    await prepareWorkRoot(env.WORK_ROOT, "executor-ai", { logger });
  },
  works: ({ logger }) => {
    const { clients, secrets, urlPolicy, configured } = createClients(env, logger);
    const pricing = createPricing(loadPriceTable(env.PRICE_TABLE_FILE));
    logger.info({ providers: ["local", ...configured], pricesReadOn: pricing.prices.readOn }, "AI providers");
    const deps: AiWorkDeps = {
      clients,
      secrets,
      pricing,
      urlPolicy,
      pollIntervalMs: env.PROVIDER_POLL_INTERVAL_MS,
      maxWaitMs: env.PROVIDER_MAX_WAIT_MS,
      httpTimeoutMs: env.PROVIDER_HTTP_TIMEOUT_MS,
      maxDownloadBytes: env.PROVIDER_MAX_DOWNLOAD_BYTES,
      localFontFile: env.LOCAL_FONT_FILE,
      localTimeoutMs: env.LOCAL_RENDER_TIMEOUT_MS,
      logger,
    };
    // A provider that keeps answering 429 fails the node after PROVIDER_RATE_LIMIT_MAX_WAIT_MS, whatever the type.
    const patient = createPatience(env.PROVIDER_RATE_LIMIT_MAX_WAIT_MS);
    return {
      "talking-head": patient(createTalkingHeadWork(deps)),
      "generate-voiceover": patient(createGenerateVoiceoverWork(deps)),
      "generate-animation": patient(createGenerateAnimationWork(deps)),
    };
  },
});
