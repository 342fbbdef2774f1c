import { estimateAiCost, heygenFrame, type TalkingHeadConfig } from "@vp/contracts";
import type { WorkContext, WorkFunction, WorkResult } from "@vp/runtime";
import type { z } from "zod";
import { WorkInputError } from "../errors";
import { renderLocalTalkingHead } from "../local/render";
import {
  type AiWorkDeps,
  configuredProviders,
  downloadResult,
  elapsedSeconds,
  parseConfig,
  progressRange,
  providerFields,
  recordLocal,
  resolveScript,
  selectProvider,
  storeResult,
} from "./common";
import { runPaidJob } from "./paid-job";

type Config = z.infer<typeof TalkingHeadConfig>;

/** HeyGen's limit for one avatar's text input. */
const HEYGEN_MAX_CHARACTERS = 5000;

/** talking-head: a presenter speaking the script, by HeyGen or as a local presenter card. */
export function createTalkingHeadWork(deps: AiWorkDeps): WorkFunction {
  const configured = configuredProviders(deps.clients);
  return async (ctx) => {
    const config = parseConfig(ctx.node, "talking-head");
    const provider = selectProvider("talking-head", config.provider, configured);
    const script = await resolveScript(ctx, config.script, provider === "heygen" ? HEYGEN_MAX_CHARACTERS : 10_000);
    return provider === "local" ? localTalkingHead(deps, ctx, script, config) : heygenTalkingHead(deps, ctx, script, config);
  };
}

/** The presenter card with the espeak-ng voiceover, and when each sentence is said in its sound track. */
async function localTalkingHead(deps: AiWorkDeps, ctx: WorkContext, script: string, config: Config): Promise<WorkResult> {
  const started = performance.now();
  await recordLocal(ctx, estimateAiCost("talking-head", "local", { script, speed: config.speed }, deps.pricing));
  ctx.progress(5);
  const { path, timing } = await renderLocalTalkingHead({
    workDir: ctx.workDir,
    signal: ctx.signal,
    fontFile: deps.localFontFile,
    timeoutMs: deps.localTimeoutMs,
    title: ctx.node.title,
    text: script,
    voice: config.voiceId,
    speed: config.speed,
    pitch: config.pitch,
    width: config.width,
    height: config.height,
    onProgress: progressRange(ctx, 10, 90),
  });
  const { output } = await storeResult(ctx, path, { type: "video", ext: "mp4", contentType: "video/mp4", what: "the local talking head" });
  return { output: { ...output, ...providerFields("local"), timing }, cost: deps.pricing.local(elapsedSeconds(started)) };
}

/**
 * A HeyGen avatar video: created once per job (runPaidJob), polled, downloaded, paid by its probed length at the price
 * of its avatar type (the request is the same for every type: `type: "avatar"` with the look's id).
 */
async function heygenTalkingHead(deps: AiWorkDeps, ctx: WorkContext, script: string, config: Config): Promise<WorkResult> {
  const heygen = deps.clients.heygen!;
  const { avatarId, voiceId, avatarType = "studio_avatar" } = config;
  if (!avatarId) throw new WorkInputError("talking-head with provider heygen needs config.avatarId (a HeyGen avatar id)");
  if (!voiceId) throw new WorkInputError("talking-head with provider heygen needs config.voiceId (a HeyGen voice id)");
  const width = config.width ?? 1280;
  const height = config.height ?? 720;
  const job = await runPaidJob(
    ctx,
    {
      provider: "heygen",
      estimatedCost: estimateAiCost("talking-head", "heygen", { script, speed: config.speed, width, height, avatarType }, deps.pricing),
      create: (clientRef, signal) =>
        heygen.createVideo({ avatarId, voiceId, script, speed: config.speed, width, height, clientRef, title: `${ctx.node.title} [${clientRef}]` }, signal),
      poll: (id, signal) => heygen.poll(id, signal),
      findByClientRef: (ref, signal) => heygen.findByClientRef(ref, signal),
    },
    { pollIntervalMs: deps.pollIntervalMs, maxWaitMs: deps.maxWaitMs, onProgress: progressRange(ctx, 10, 80) },
  );
  ctx.progress(82);
  const file = await downloadResult(deps, ctx, { provider: "heygen", url: job.url, name: "heygen.mp4" });
  const { output, probe: p } = await storeResult(ctx, file, { type: "video", ext: "mp4", contentType: "video/mp4", what: "the HeyGen video" });
  return {
    output: { ...output, ...providerFields("heygen", { providerJobId: job.id, avatarId, voiceId }) },
    cost: deps.pricing.heygen(p.durationSeconds, heygenFrame(width, height).resolution, avatarType),
  };
}
