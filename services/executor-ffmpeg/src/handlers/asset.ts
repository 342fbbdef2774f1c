import { rename } from "node:fs/promises";
import { join } from "node:path";
import { MediaType, type NodeOutput } from "@vp/contracts";
import { factsOfProbe, probe, type ProbeResult } from "@vp/media";
import { jobOutputKey } from "@vp/runtime";
import { validateKey } from "@vp/storage";
import { asInputError, WorkInputError } from "./errors";
import { localExtension, round3 } from "./files";
import type { WorkContext, WorkFunction } from "./types";
import { fetchUrlToFile, UrlFetchError, UrlRefusedError, type Cidr } from "@vp/url-guard";

/** How URL assets are downloaded (executor-ffmpeg's ASSET_URL_* settings). */
export interface AssetUrlOptions {
  /** Internal ranges an operator admits (ASSET_URL_ALLOW_CIDRS); everything internal is refused otherwise. */
  allow: readonly Cidr[];
  maxBytes: number;
  timeoutMs: number;
}

export const DEFAULT_ASSET_URL_OPTIONS: AssetUrlOptions = { allow: [], maxBytes: 2 * 1024 ** 3, timeoutMs: 10 * 60_000 };

/** Inline JSON is parsed to validate it; an uploaded JSON file larger than this is not. */
const MAX_JSON_VALIDATE_BYTES = 10 * 1024 * 1024;

interface AssetFields {
  type: MediaType;
  source?: string;
  url?: string;
  content?: string;
  contentType?: string;
}

/** The fields this work needs from the asset column, read leniently (the column may grow new keys). */
function readAsset(raw: unknown): AssetFields {
  if (!raw || typeof raw !== "object") throw new WorkInputError("Asset node has no asset");
  const { type, source, url, content, contentType } = raw as Record<string, unknown>;
  const parsedType = MediaType.safeParse(type);
  if (!parsedType.success) throw new WorkInputError(`Asset type must be one of ${MediaType.options.join(", ")}`);
  const str = (v: unknown) => (typeof v === "string" && v.length > 0 ? v : undefined);
  return {
    type: parsedType.data,
    source: str(source),
    url: str(url),
    content: typeof content === "string" ? content : undefined,
    contentType: str(contentType),
  };
}

function checkStreams(type: "video" | "audio" | "image", p: ProbeResult): void {
  if (type === "audio" ? !p.audio : !p.video) {
    throw new WorkInputError(`expected ${type === "audio" ? "an audio" : `a ${type}`} file but it has no ${type === "audio" ? "audio" : "video"} stream`);
  }
}

type MediaAsset = AssetFields & { type: "video" | "audio" | "image" };
const DEFAULT_EXT = { video: "mp4", audio: "mp3", image: "png" } as const;

/** video, audio, image: the uploaded file stays where the gateway stored it; the output describes it. */
async function ingestMedia(ctx: WorkContext, asset: MediaAsset): Promise<NodeOutput> {
  const { source } = asset;
  if (!source) throw new WorkInputError("Asset has no uploaded file");
  const local = join(ctx.workDir, `asset.${localExtension(asset.contentType, DEFAULT_EXT[asset.type])}`);
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
  return describeMedia(asset.type, p, source, asset.contentType);
}

/**
 * video, audio, image from a URL: downloaded into the job directory through the SSRF guard (@vp/url-guard), probed
 * like an upload, then stored under the node's output key. The local name is generated; the server's
 * Content-Type only picks an extension and a content type from the allow-list of files.ts, and only when it is
 * of the asset's own kind.
 */
async function ingestUrl(ctx: WorkContext, asset: MediaAsset & { url: string }, urls: AssetUrlOptions): Promise<NodeOutput> {
  const download = join(ctx.workDir, "download");
  let fetched;
  try {
    fetched = await fetchUrlToFile(asset.url, download, {
      ...urls,
      signal: ctx.signal,
      onProgress: (received, total) => {
        if (total) ctx.progress(Math.floor((received / total) * 45));
      },
    });
  } catch (error) {
    if (error instanceof UrlRefusedError) throw new WorkInputError(error.message, { cause: error });
    if (error instanceof UrlFetchError) throw new WorkInputError(`Asset URL: ${error.message}`, { cause: error });
    throw error;
  }
  const bare = fetched.contentType?.split(";")[0]?.trim().toLowerCase();
  const contentType = bare && bare.startsWith(`${asset.type}/`) && localExtension(bare, "") ? bare : undefined;
  const ext = localExtension(contentType, DEFAULT_EXT[asset.type]);
  const local = join(ctx.workDir, `asset.${ext}`);
  await rename(download, local);
  ctx.progress(50);
  let p: ProbeResult;
  try {
    p = await probe(local, { signal: ctx.signal });
  } catch (error) {
    throw asInputError(error, "Asset URL");
  }
  checkStreams(asset.type, p);
  const key = jobOutputKey(ctx, ext);
  await ctx.storage.putFile(key, local, contentType ? { contentType } : {});
  ctx.logger.info({ redirects: fetched.redirects, size: fetched.size, s3Key: key }, "asset URL downloaded");
  return describeMedia(asset.type, p, key, contentType);
}

/** The output of a media asset stored under `s3Key`, from its probe. */
function describeMedia(type: MediaAsset["type"], p: ProbeResult, s3Key: string, contentType: string | undefined): NodeOutput {
  const output: NodeOutput = { type, s3Key, size: p.sizeBytes };
  if (type !== "image") output.duration = round3(p.durationSeconds);
  if (type !== "audio" && p.video) {
    output.width = p.video.width;
    output.height = p.video.height;
    output.videoCodec = p.video.codec;
  }
  if (type !== "image" && p.audio) output.audioCodec = p.audio.codec;
  if (contentType) output.contentType = contentType;
  if (type === "image") return output;
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
    const key = jobOutputKey(ctx, asset.type === "json" ? "json" : "txt");
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
 * The asset node's work: check that what was uploaded, typed or linked is what the node says it is, and
 * describe it as the node's output. No money is spent (cost 0). A url wins over an earlier upload (the gateway
 * clears one when the other is set).
 */
export function createAssetWork(options: { urls?: AssetUrlOptions } = {}): WorkFunction {
  const urls = options.urls ?? DEFAULT_ASSET_URL_OPTIONS;
  return async (ctx) => {
    const asset = readAsset(ctx.node.asset);
    if ((asset.type === "text" || asset.type === "json") && asset.url !== undefined) {
      throw new WorkInputError(`Asset: ${asset.type} assets take inline content or an upload, not a url`);
    }
    const output =
      asset.type === "text" || asset.type === "json"
        ? await ingestText(ctx, { ...asset, type: asset.type })
        : asset.url !== undefined
          ? await ingestUrl(ctx, { ...asset, type: asset.type, url: asset.url }, urls)
          : await ingestMedia(ctx, { ...asset, type: asset.type });
    ctx.logger.info({ assetType: asset.type, s3Key: output.s3Key, size: output.size }, "asset ingested");
    return { output, cost: 0 };
  };
}
