import { join } from "node:path";
import { RenderCodeConfig } from "@vp/contracts";
import { codeTiming, resolveProps } from "@vp/code-animation";
import type { CodeRenderer } from "@vp/code-animation/render";
import { computeCost, probe } from "@vp/media";
import { jobOutputKey } from "@vp/runtime";
import { NotFoundError, TooLargeError, validateKey } from "@vp/storage";
import { outputOfProbe, parseConfig } from "./common";
import { asInputError, WorkInputError } from "./errors";
import type { WorkFunction } from "./types";

export interface RenderCodeWorkOptions {
  /** One renderer per process: it bundles the composition once and serves every render from that bundle. */
  renderer: CodeRenderer;
  /** Dollars per second of rendering (FFMPEG_COST_PER_CPU_SECOND_USD; wall seconds, see docs/media.md); default 0. */
  costPerCpuSecond?: number;
  /** Longest animation accepted, so a huge paste does not occupy the renderer for an hour. */
  maxDurationSeconds?: number;
}

/** The config's code limit; a connected text asset is held to the same. */
const MAX_CODE_BYTES = 100_000;
const DEFAULT_MAX_SECONDS = 600;
/** The bar: 5 % reading the code, 90 % the render, the rest storing. */
const RENDER_FROM = 5;
const RENDER_SHARE = 90;

/**
 * render-code: a code-typing animation of the `code` input (a text asset) or config.code, rendered by the
 * Remotion composition in @vp/code-animation with Debian's Chromium. The MP4's duration follows from the
 * code's length and the typing speed (see codeTiming), and is known before rendering.
 */
export function createRenderCodeWork(options: RenderCodeWorkOptions): WorkFunction {
  return async (ctx) => {
    const started = performance.now();
    const { job, node, storage, workDir, signal, logger } = ctx;
    const config = parseConfig(RenderCodeConfig, "render-code", node.config);
    const [codeNode] = ctx.inputs.code ?? [];
    let code = config.code ?? "";
    if (codeNode) {
      const output = codeNode.output;
      if (codeNode.status !== "completed" || !output?.s3Key || output.type !== "text") {
        throw new WorkInputError(`input "code": node "${codeNode.id}" has no completed text output`);
      }
      try {
        validateKey(output.s3Key);
        code = (await storage.getBuffer(output.s3Key, { maxBytes: MAX_CODE_BYTES })).toString("utf8");
      } catch (error) {
        if (error instanceof TooLargeError) throw new WorkInputError(`input "code": the text is larger than ${MAX_CODE_BYTES} bytes`);
        if (error instanceof NotFoundError) throw new WorkInputError(`input "code": node "${codeNode.id}" output is missing from storage`);
        throw asInputError(error, `input "code"`);
      }
    }
    const props = resolveProps({
      code,
      language: config.language,
      theme: config.theme,
      typingSpeed: config.typingSpeed,
      highlightLines: config.highlightLines,
      width: config.width,
      height: config.height,
      fps: config.fps,
    });
    if (props.code.trim().length === 0) {
      throw new WorkInputError("render-code has no code: connect a text asset to the code input or set config.code");
    }
    const timing = codeTiming(props);
    const maxSeconds = options.maxDurationSeconds ?? DEFAULT_MAX_SECONDS;
    if (timing.durationSeconds > maxSeconds) {
      throw new WorkInputError(
        `the animation would last ${timing.durationSeconds.toFixed(1)} s (${timing.chars} characters at ${props.typingSpeed}/s), over the limit of ${maxSeconds} s: raise typingSpeed or shorten the code`,
      );
    }
    ctx.progress(RENDER_FROM);

    const rendered = join(workDir, "output.mp4");
    await options.renderer.render({
      props,
      output: rendered,
      signal,
      onProgress: (percent) => ctx.progress(RENDER_FROM + (percent * RENDER_SHARE) / 100),
    });
    const p = await probe(rendered, { signal });
    const key = jobOutputKey(ctx, "mp4");
    const { size } = await storage.putFile(key, rendered, { contentType: "video/mp4" });
    const seconds = (performance.now() - started) / 1000;
    logger.info({ frames: timing.durationInFrames, fps: props.fps, chars: timing.chars, size, seconds }, "code rendered");
    return { output: outputOfProbe(key, size, p), cost: computeCost(seconds, options.costPerCpuSecond) };
  };
}
