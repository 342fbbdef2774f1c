import { join } from "node:path";
import { CONFIG_SCHEMAS, type NodeOutput, type NodeType, type SerializedNode } from "@vp/contracts";
import { isInvalidMediaError, probe, type ProbeResult } from "@vp/media";
import { jobOutputKey, type WorkContext } from "@vp/runtime";
import { NotFoundError, StorageKeyError, TooLargeError, validateKey } from "@vp/storage";
import type { Logger } from "@vp/telemetry";
import type { z } from "zod";
import { PROVIDER_LABEL, WorkInputError, type PaidProvider } from "../errors";
import type { Pricing } from "../pricing";
import { downloadToFile, type UrlPolicy } from "../providers/download";
import type { ElevenlabsClient } from "../providers/elevenlabs";
import type { HeygenClient } from "../providers/heygen";
import type { RunwayClient } from "../providers/runway";
import type { VeoClient } from "../providers/veo";

export type AiType = "talking-head" | "generate-voiceover" | "generate-animation";
export type ProviderName = PaidProvider | "local";

/** One client per paid provider whose key is configured. */
export interface AiClients {
  heygen?: HeygenClient;
  elevenlabs?: ElevenlabsClient;
  veo3?: VeoClient;
  runway?: RunwayClient;
}

/** What every executor-ai work function is built from (handlers never read the environment). */
export interface AiWorkDeps {
  clients: AiClients;
  /** API keys, sent only with downloads from the provider's own origin, and redacted from messages. */
  secrets: Partial<Record<PaidProvider, string>>;
  pricing: Pricing;
  urlPolicy: UrlPolicy;
  pollIntervalMs: number;
  maxWaitMs: number;
  httpTimeoutMs: number;
  maxDownloadBytes: number;
  localFontFile?: string;
  localTimeoutMs: number;
  logger?: Logger;
}

/** The paid providers that have a client (their key is configured). */
export function configuredProviders(clients: AiClients): ReadonlySet<PaidProvider> {
  return new Set(
    Object.entries(clients)
      .filter(([, c]) => c)
      .map(([p]) => p as PaidProvider),
  );
}

/** Downloads a finished provider result into the work directory (never handing its URL to anything else). */
export async function downloadResult(
  deps: AiWorkDeps,
  ctx: WorkContext,
  result: { provider: PaidProvider; url: string; name: string; keyHeader?: Record<string, string> },
): Promise<string> {
  const dest = join(ctx.workDir, result.name);
  const origin = deps.clients[result.provider]?.http.origin;
  await downloadToFile({
    provider: result.provider,
    url: result.url,
    dest,
    policy: deps.urlPolicy,
    // The key goes only to the provider's own API origin (Veo's download URI), never to a CDN or a redirect.
    headersFor: (u) => (result.keyHeader && u.origin === origin ? result.keyHeader : {}),
    idleTimeoutMs: deps.httpTimeoutMs,
    maxBytes: deps.maxDownloadBytes,
    secrets: Object.values(deps.secrets).filter((s): s is string => !!s),
    signal: ctx.signal,
  });
  return dest;
}

/** A local render is recorded like a paid job's intent (phase "local"), with its rough estimate. */
export async function recordLocal(ctx: WorkContext, estimatedCost: number): Promise<void> {
  await requireRecorder(ctx)({ provider: "local", phase: "local", estimatedCost });
}

export const elapsedSeconds = (started: number) => (performance.now() - started) / 1000;

/** The environment variable that holds each paid provider's key (named in "… is not configured"). */
export const KEY_ENV: Record<PaidProvider, string> = {
  heygen: "HEYGEN_API_KEY",
  elevenlabs: "ELEVENLABS_API_KEY",
  veo3: "GEMINI_API_KEY",
  runway: "RUNWAY_API_KEY",
};

/** Paid providers per type, in the order a node without `provider` prefers them when their key is configured. */
export const PAID_PROVIDERS: Record<AiType, PaidProvider[]> = {
  "talking-head": ["heygen"],
  "generate-voiceover": ["elevenlabs"],
  "generate-animation": ["veo3", "runway"],
};

/**
 * The provider a node runs on: the one it names (a paid one needs its key), else the first paid provider whose
 * key is configured, else "local" (so a machine without any key runs every AI node for free).
 */
export function selectProvider(type: AiType, named: string | undefined, configured: ReadonlySet<PaidProvider>): ProviderName {
  if (named === "local") return "local";
  if (named) {
    const paid = named as PaidProvider;
    if (!PAID_PROVIDERS[type].includes(paid)) throw new WorkInputError(`${type} has no provider "${named}"`);
    if (!configured.has(paid)) throw new WorkInputError(`${KEY_ENV[paid]} is not configured`);
    return paid;
  }
  return PAID_PROVIDERS[type].find((p) => configured.has(p)) ?? "local";
}

/** The node's config against its type's contract (the gateway checked it at write time; the column may be older). */
export function parseConfig<T extends AiType>(node: SerializedNode, type: T): z.infer<(typeof CONFIG_SCHEMAS)[T]> {
  const parsed = CONFIG_SCHEMAS[type].safeParse(node.config ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new WorkInputError(`config${issue?.path.length ? `.${issue.path.join(".")}` : ""}: ${issue?.message ?? "invalid"}`);
  }
  return parsed.data as z.infer<(typeof CONFIG_SCHEMAS)[T]>;
}

const MAX_TEXT_BYTES = 200 * 1024;

/** The text of the asset connected to `slot` (a stored text file), or undefined when nothing is connected. */
export async function readTextInput(ctx: WorkContext, slot: string): Promise<string | undefined> {
  const upstream = ctx.inputs[slot]?.[0];
  if (!upstream) return undefined;
  const output = upstream.output;
  if (!output?.s3Key) throw new WorkInputError(`input "${slot}": node "${upstream.id}" has no output`);
  if (output.type !== "text") throw new WorkInputError(`input "${slot}" accepts text, but node "${upstream.id}" output is ${output.type}`);
  try {
    validateKey(output.s3Key);
    return (await ctx.storage.getBuffer(output.s3Key, { maxBytes: MAX_TEXT_BYTES })).toString("utf8").trim();
  } catch (error) {
    if (error instanceof TooLargeError) throw new WorkInputError(`input "${slot}": the text is larger than ${MAX_TEXT_BYTES / 1024} KiB`);
    if (error instanceof NotFoundError || error instanceof StorageKeyError) {
      throw new WorkInputError(`input "${slot}": the text of node "${upstream.id}" is missing from storage`);
    }
    throw error;
  }
}

/** The text to speak: the `script` input, else config.script. */
export async function resolveScript(ctx: WorkContext, fromConfig: string | undefined, maxCharacters: number): Promise<string> {
  const script = (await readTextInput(ctx, "script")) ?? fromConfig?.trim();
  if (!script) throw new WorkInputError(`${ctx.node.type} needs a script: connect a text asset to "script" or set config.script`);
  if (script.length > maxCharacters)
    throw new WorkInputError(`the script has ${script.length} characters; this provider and model take at most ${maxCharacters}`);
  return script;
}

export async function resolvePrompt(ctx: WorkContext, fromConfig: string | undefined): Promise<string> {
  const prompt = (await readTextInput(ctx, "prompt")) ?? fromConfig?.trim();
  if (!prompt) throw new WorkInputError(`generate-animation needs a prompt: connect a text asset to "prompt" or set config.prompt`);
  if (prompt.length > 4000) throw new WorkInputError(`the prompt has ${prompt.length} characters; at most 4000 are allowed`);
  return prompt;
}

export interface ImageInput {
  path: string;
  mimeType: "image/png" | "image/jpeg" | "image/webp";
  format: "png_pipe" | "jpeg_pipe" | "webp_pipe";
  width: number;
  height: number;
  bytes: number;
}

const IMAGE_CODECS: Record<string, Pick<ImageInput, "mimeType" | "format"> & { ext: string }> = {
  png: { mimeType: "image/png", format: "png_pipe", ext: "png" },
  mjpeg: { mimeType: "image/jpeg", format: "jpeg_pipe", ext: "jpg" },
  webp: { mimeType: "image/webp", format: "webp_pipe", ext: "webp" },
};

/** The `image` input (first frame for image-to-video), copied into the work directory and probed. */
export async function resolveImage(ctx: WorkContext): Promise<ImageInput | undefined> {
  const upstream = ctx.inputs.image?.[0];
  if (!upstream) return undefined;
  const output = upstream.output;
  if (!output?.s3Key || output.type !== "image") throw new WorkInputError(`input "image": node "${upstream.id}" has no image output`);
  const local = join(ctx.workDir, "image-input");
  let p: ProbeResult;
  try {
    validateKey(output.s3Key);
    await ctx.storage.download(output.s3Key, local);
    p = await probe(local, { signal: ctx.signal });
  } catch (error) {
    if (isInvalidMediaError(error) || error instanceof NotFoundError || error instanceof StorageKeyError) {
      throw new WorkInputError(`input "image": ${(error as Error).message}`);
    }
    throw error;
  }
  const kind = p.video ? IMAGE_CODECS[p.video.codec] : undefined;
  if (!kind || !p.video) throw new WorkInputError(`input "image" must be a PNG, JPEG or WebP image (got ${p.video?.codec ?? p.formatName})`);
  return { path: local, mimeType: kind.mimeType, format: kind.format, width: p.video.width, height: p.video.height, bytes: p.sizeBytes };
}

/** Checks a produced or downloaded file and stores it under the job's generated output key. */
export async function storeResult(
  ctx: WorkContext,
  file: string,
  expect: { type: "video" | "audio"; ext: string; contentType: string; what: string },
): Promise<{ output: NodeOutput; probe: ProbeResult }> {
  let p: ProbeResult;
  try {
    p = await probe(file, { signal: ctx.signal });
  } catch (error) {
    if (isInvalidMediaError(error)) throw new WorkInputError(`${expect.what}: ${(error as Error).message}`);
    throw error;
  }
  if (expect.type === "video" && !p.video) throw new WorkInputError(`${expect.what} has no video stream`);
  if (expect.type === "audio" && !p.audio) throw new WorkInputError(`${expect.what} has no audio stream`);
  const key = jobOutputKey(ctx, expect.ext);
  const { size } = await ctx.storage.putFile(key, file, { contentType: expect.contentType });
  const output: NodeOutput = { type: expect.type, s3Key: key, size, duration: Math.round(p.durationSeconds * 1000) / 1000, contentType: expect.contentType };
  if (p.video && expect.type === "video") {
    output.width = p.video.width;
    output.height = p.video.height;
    output.videoCodec = p.video.codec;
  }
  if (p.audio) output.audioCodec = p.audio.codec;
  return { output, probe: p };
}

/** Output fields that say where a result came from; local drafts carry a visible label. */
export function providerFields(provider: ProviderName, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return provider === "local"
    ? { provider: "local", local: true, label: "local draft", ...extra }
    : { provider, providerLabel: PROVIDER_LABEL[provider], ...extra };
}

export function requireRecorder(ctx: WorkContext) {
  if (!ctx.recordProviderJob) throw new Error("this job runner cannot record provider jobs; AI work needs @vp/runtime's job runner");
  return ctx.recordProviderJob;
}

export function progressRange(ctx: WorkContext, from: number, to: number) {
  return (fraction: number) => ctx.progress(from + Math.max(0, Math.min(1, fraction)) * (to - from));
}

export type { NodeType };
