import { join } from "node:path";
import { MediaType, type NodeOutput } from "@vp/contracts";
import { factsOfProbe, probe, type ProbeResult } from "@vp/media";
import { outputKey, validateKey } from "@vp/storage";
import { asInputError, WorkInputError } from "./errors";
import { localExtension, round3 } from "./files";
import type { WorkContext, WorkFunction } from "./types";

/** Inline JSON is parsed to validate it; an uploaded JSON file larger than this is not. */
const MAX_JSON_VALIDATE_BYTES = 10 * 1024 * 1024;

interface AssetFields {
  type: MediaType;
  source?: string;
  content?: string;
  contentType?: string;
}

/** The fields this work needs from the asset column, read leniently (the column may grow new keys). */
function readAsset(raw: unknown): AssetFields {
  if (!raw || typeof raw !== "object") throw new WorkInputError("Asset node has no asset");
  const { type, source, content, contentType } = raw as Record<string, unknown>;
  const parsedType = MediaType.safeParse(type);
  if (!parsedType.success) throw new WorkInputError(`Asset type must be one of ${MediaType.options.join(", ")}`);
  const str = (v: unknown) => (typeof v === "string" && v.length > 0 ? v : undefined);
  return { type: parsedType.data, source: str(source), content: typeof content === "string" ? content : undefined, contentType: str(contentType) };
}

function checkStreams(type: "video" | "audio" | "image", p: ProbeResult): void {
  if (type === "audio" ? !p.audio : !p.video) {
    throw new WorkInputError(`expected ${type === "audio" ? "an audio" : `a ${type}`} file but it has no ${type === "audio" ? "audio" : "video"} stream`);
  }
}

/** video, audio, image: the uploaded file stays where the gateway stored it; the output describes it. */
async function ingestMedia(ctx: WorkContext, asset: AssetFields & { type: "video" | "audio" | "image" }): Promise<NodeOutput> {
  const { source } = asset;
  if (!source) throw new WorkInputError("Asset has no uploaded file");
  const defaultExt = { video: "mp4", audio: "mp3", image: "png" }[asset.type];
  const local = join(ctx.workDir, `asset.${localExtension(asset.contentType, defaultExt)}`);
  let p: ProbeResult;
  try {
    validateKey(source);
    await ctx.storage.download(source, local);
    ctx.progress(50);
    p = await probe(local, { signal: ctx.signal });
  } catch (error) {
    throw asInputError(error, "Asset file");
  }
  checkStreams(asset.type, p);

  const output: NodeOutput = { type: asset.type, s3Key: source, size: p.sizeBytes };
  if (asset.type !== "image") output.duration = round3(p.durationSeconds);
  if (asset.type !== "audio" && p.video) {
    output.width = p.video.width;
    output.height = p.video.height;
    output.videoCodec = p.video.codec;
  }
  if (asset.type !== "image" && p.audio) output.audioCodec = p.audio.codec;
  if (asset.contentType) output.contentType = asset.contentType;
  if (asset.type === "image") return output;
  // The rest of the probe, for the nodes that read this file (they skip their own ffprobe): only of the
  // streams recorded above, so the output describes one consistent view of the file. An image has no
  // duration, so no node could use them.
  const facts = factsOfProbe(p);
  output.formatName = facts.formatName;
  if (output.videoCodec !== undefined) {
    Object.assign(output, { videoProfile: facts.videoProfile, pixFmt: facts.pixFmt, fps: facts.fps, videoTimeBase: facts.videoTimeBase });
  }
  if (output.audioCodec !== undefined) {
    Object.assign(output, { sampleRate: facts.sampleRate, audioChannels: facts.audioChannels, audioChannelLayout: facts.audioChannelLayout });
  }
  for (const k of Object.keys(output) as (keyof NodeOutput)[]) if (output[k] === undefined) delete output[k];
  return output;
}

/** text, json: inline content is stored as the node's output; an uploaded file is used where it is. */
async function ingestText(ctx: WorkContext, asset: AssetFields & { type: "text" | "json" }): Promise<NodeOutput> {
  const { job, storage } = ctx;
  const contentType = asset.type === "json" ? "application/json" : "text/plain; charset=utf-8";
  if (asset.content !== undefined) {
    if (asset.type === "json") parseJson(asset.content);
    const key = outputKey(job.pipelineId, job.nodeId, job.jobId, asset.type === "json" ? "json" : "txt");
    const { size } = await storage.put(key, Buffer.from(asset.content, "utf8"), { contentType });
    return { type: asset.type, s3Key: key, size, contentType };
  }
  if (!asset.source) throw new WorkInputError("Asset has no content and no uploaded file");
  try {
    validateKey(asset.source);
    const stat = await storage.stat(asset.source);
    if (!stat) throw new WorkInputError("Asset file: the uploaded file is missing from storage");
    if (asset.type === "json" && stat.size <= MAX_JSON_VALIDATE_BYTES) {
      parseJson((await storage.getBuffer(asset.source, { maxBytes: MAX_JSON_VALIDATE_BYTES })).toString("utf8"));
    }
    return { type: asset.type, s3Key: asset.source, size: stat.size, contentType: asset.contentType ?? contentType };
  } catch (error) {
    throw asInputError(error, "Asset file");
  }
}

function parseJson(text: string): void {
  try {
    JSON.parse(text);
  } catch (error) {
    throw new WorkInputError(`Asset content is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * The asset node's work: check that what was uploaded or typed is what the node says it is, and describe
 * it as the node's output. No money is spent (cost 0).
 */
export function createAssetWork(): WorkFunction {
  return async (ctx) => {
    const asset = readAsset(ctx.node.asset);
    const output =
      asset.type === "text" || asset.type === "json"
        ? await ingestText(ctx, { ...asset, type: asset.type })
        : await ingestMedia(ctx, { ...asset, type: asset.type });
    ctx.logger.info({ assetType: asset.type, s3Key: output.s3Key, size: output.size }, "asset ingested");
    return { output, cost: 0 };
  };
}
