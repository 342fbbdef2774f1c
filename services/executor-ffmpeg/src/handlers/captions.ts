import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  CONFIG_SCHEMAS,
  type NodeOutput,
  type SerializedNode,
  type SpeechTiming,
  SpeechTiming as SpeechTimingSchema,
  splitSentences,
  spreadByWords,
} from "@vp/contracts";
import { burnCaptions, captionsToSrt, captionsToWebVtt, computeCost, type Cue } from "@vp/media";
import { jobOutputKey } from "@vp/runtime";
import { NotFoundError, TooLargeError, validateKey } from "@vp/storage";
import { fetchInput, outputOfProbe, parseConfig, requireMediaInput, type FfmpegWorkOptions } from "./common";
import { asInputError, WorkInputError } from "./errors";
import type { WorkContext, WorkFunction } from "./types";

const DOWNLOAD_SHARE = 10;
const BURN_SHARE = 85;
/** A script read for captions is held to the voiceover's own limit. */
const MAX_SCRIPT_BYTES = 100_000;

/**
 * captions: the `video` input with its speech burned in as captions (libass), plus WebVTT and SRT files of the
 * same cues (output.files.vtt / .srt). The cues come from the `speech` input: a voiceover's recorded sentence
 * timing, or a script whose sentences are spread over the video by word count (output.timing.source says which).
 */
export function createCaptionsWork(options: FfmpegWorkOptions = {}): WorkFunction {
  return async (ctx) => {
    const { node, storage, workDir, signal, logger } = ctx;
    const config = parseConfig(CONFIG_SCHEMAS.captions, "captions", node.config);
    const [videoNode] = ctx.inputs.video ?? [];
    const videoOut = requireMediaInput("video", videoNode, "video");
    const video = await fetchInput(ctx, { slot: "video", node: videoNode!, output: videoOut, name: "video", kind: "video" });
    ctx.progress(DOWNLOAD_SHARE);

    const speech = await speechTiming(ctx, video.probe.durationSeconds);
    const offset = config.offsetSeconds ?? 0;
    const cues: Cue[] = speech.sentences
      .map((s) => ({ start: s.start + offset, end: Math.min(s.end + offset, video.probe.durationSeconds), text: s.text }))
      .filter((c) => c.end > c.start);
    if (cues.length === 0) throw new WorkInputError("captions: no sentence of the speech falls inside the video (check offsetSeconds)");

    const outputPath = join(workDir, "output.mp4");
    let burned;
    try {
      burned = await burnCaptions({
        video: video.path,
        probe: video.probe,
        cues,
        output: outputPath,
        workDir,
        style: config,
        signal,
        timeoutMs: options.ffmpegTimeoutMs,
        onProgress: (percent) => ctx.progress(DOWNLOAD_SHARE + (percent * BURN_SHARE) / 100),
        logger,
      });
    } catch (error) {
      throw asInputError(error, "ffmpeg could not burn in the captions");
    }
    const key = jobOutputKey(ctx, "mp4");
    const sidecars = await storeSidecars(ctx, burned.cues, config.maxCharsPerLine);
    const { size } = await storage.putFile(key, outputPath, { contentType: "video/mp4" });
    logger.info({ cues: burned.cues.length, timing: speech.source, size, cpuSeconds: burned.cpuSeconds }, "captions burned in");
    const output: NodeOutput = {
      ...outputOfProbe(key, size, burned.probe),
      timing: { source: speech.source, sentences: cues },
      files: sidecars,
    };
    return { output, cost: computeCost(burned.cpuSeconds, options.costPerCpuSecond) };
  };
}

/** When each sentence is said: a voiceover's recorded timing, or the script spread over the video's length. */
async function speechTiming(ctx: WorkContext, videoSeconds: number): Promise<SpeechTiming> {
  const [speechNode] = ctx.inputs.speech ?? [];
  if (!speechNode) throw new WorkInputError('input "speech" is missing: connect a voiceover or a script');
  if (speechNode.output?.type === "audio") {
    const parsed = SpeechTimingSchema.safeParse(speechNode.output.timing);
    if (!parsed.success || parsed.data.sentences.length === 0) {
      throw new WorkInputError(`input "speech": node "${speechNode.id}" recorded no speech timing: run the voiceover again to record it`);
    }
    return parsed.data;
  }
  const sentences = splitSentences(await readScript(ctx, speechNode));
  if (sentences.length === 0) throw new WorkInputError(`input "speech": the script of node "${speechNode.id}" is empty`);
  ctx.logger.info({ sentences: sentences.length }, "captions timed by word count: the speech input is a script, not a voiceover");
  return { source: "estimated", sentences: spreadByWords(sentences, videoSeconds) };
}

async function readScript(ctx: WorkContext, node: SerializedNode): Promise<string> {
  const output = node.output;
  if (node.status !== "completed" || !output?.s3Key || output.type !== "text") {
    throw new WorkInputError(`input "speech": node "${node.id}" has no completed text or audio output`);
  }
  try {
    validateKey(output.s3Key);
    return (await ctx.storage.getBuffer(output.s3Key, { maxBytes: MAX_SCRIPT_BYTES })).toString("utf8");
  } catch (error) {
    if (error instanceof TooLargeError) throw new WorkInputError(`input "speech": the script is larger than ${MAX_SCRIPT_BYTES} bytes`);
    if (error instanceof NotFoundError) throw new WorkInputError(`input "speech": node "${node.id}" output is missing from storage`);
    throw asInputError(error, 'input "speech"');
  }
}

/** The cues as WebVTT and SRT, stored beside the video under the same attempt's keys. */
async function storeSidecars(ctx: WorkContext, cues: readonly Cue[], maxCharsPerLine: number | undefined): Promise<NonNullable<NodeOutput["files"]>> {
  const files: NonNullable<NodeOutput["files"]> = {};
  const formats = [
    { name: "vtt", text: captionsToWebVtt(cues, maxCharsPerLine), contentType: "text/vtt" },
    { name: "srt", text: captionsToSrt(cues, maxCharsPerLine), contentType: "application/x-subrip" },
  ];
  for (const format of formats) {
    const path = join(ctx.workDir, `captions.${format.name}`);
    await writeFile(path, format.text, "utf8");
    const key = jobOutputKey(ctx, format.name);
    const { size } = await ctx.storage.putFile(key, path, { contentType: format.contentType });
    files[format.name] = { s3Key: key, contentType: format.contentType, size };
  }
  return files;
}
