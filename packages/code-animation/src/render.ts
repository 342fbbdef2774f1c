import { existsSync, rmSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { makeCancelSignal, renderMedia, type ChromiumOptions } from "@remotion/renderer";
import { COMPOSITION_ID, type CodeAnimationProps } from "./props";
import { codeTiming } from "./timing";

/** The file the Remotion bundler starts from. */
export const COMPOSITION_ENTRY = fileURLToPath(new URL("./entry.ts", import.meta.url));

/** Debian's chromium package. Remotion must never download a browser of its own. */
export const DEFAULT_BROWSER_EXECUTABLE = "/usr/bin/chromium";

/**
 * Software GL (ANGLE on SwiftShader): the machines this runs on have no GPU, and Remotion's defaults
 * already pass --no-sandbox, --disable-background-networking, --disable-component-update, --disable-sync
 * and --no-first-run.
 */
const CHROMIUM_OPTIONS: ChromiumOptions = { gl: "swangle", headless: true };

export interface RenderLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface CodeRendererOptions {
  /** Chromium to drive; default Debian's /usr/bin/chromium. */
  browserExecutable?: string;
  /** Browser tabs rendering frames in parallel; default 1 (Chromium's own processes use the other core). */
  concurrency?: number;
  /** A frame that takes longer than this fails the render. */
  frameTimeoutMs?: number;
  /** Parent of the bundle directory (removed on close and when the process exits); default the OS temp dir. */
  bundleRoot?: string;
  /**
   * A bundle built ahead of time (scripts/bundle-code-animation.mjs, in the executor-ffmpeg image): served as is,
   * never removed, and @remotion/bundler (a development dependency) is never loaded.
   */
  prebuiltBundle?: string;
  logger?: RenderLogger;
}

export interface RenderCodeOptions {
  props: CodeAnimationProps;
  /** Local path of the MP4 to write. */
  output: string;
  signal?: AbortSignal;
  /** 0-100, increasing. */
  onProgress?: (percent: number) => void;
}

export interface CodeRenderer {
  /** Bundles the composition (once per renderer); renders call it themselves, so this only warms up. */
  prepare(): Promise<string>;
  render(options: RenderCodeOptions): Promise<{ durationInFrames: number; fps: number }>;
  /** Removes the bundle directory. */
  close(): Promise<void>;
}

/** Rendering was cancelled through the signal; Remotion closed its browser and compositor. */
export class RenderCancelledError extends Error {
  constructor(options?: { cause?: unknown }) {
    super("render cancelled", options);
    this.name = "RenderCancelledError";
  }
}

/**
 * Renders the code-typing composition to H.264 MP4 with @remotion/renderer. The webpack bundle is built once
 * per renderer (i.e. once per process) and served to every render; each render launches its own Chromium
 * (through setpriv --pdeathsig, in its own process group) and closes it when it ends or is cancelled, so a
 * cancelled job leaves no browser behind.
 */
export function createCodeRenderer(options: CodeRendererOptions = {}): CodeRenderer {
  const browserExecutable = options.browserExecutable ?? DEFAULT_BROWSER_EXECUTABLE;
  const { prepare, close } = bundleOnce(options);
  return {
    prepare,
    render: async (renderOptions) => renderCode({ options, browserExecutable, prepare }, renderOptions),
    close,
  };
}

/** The bundle of one renderer: built (or checked, when prebuilt) on first use and again after a failure or close. */
function bundleOnce(options: CodeRendererOptions): Pick<CodeRenderer, "prepare" | "close"> {
  let bundleDir: string | undefined;
  let bundling: Promise<string> | undefined;
  const prepare = () =>
    (bundling ??= buildBundle(options, (dir) => {
      bundleDir = dir;
    }).catch((error: unknown) => {
      bundling = undefined;
      throw error;
    }));
  return {
    prepare,
    async close() {
      bundling = undefined;
      if (bundleDir) await rm(bundleDir, { recursive: true, force: true });
      bundleDir = undefined;
    },
  };
}

/** The prebuilt bundle's serve URL, or a fresh bundle's in a temp directory named to `onDir` (and removed when the process exits). */
async function buildBundle(options: CodeRendererOptions, onDir: (dir: string) => void): Promise<string> {
  if (options.prebuiltBundle) {
    if (!existsSync(join(options.prebuiltBundle, "index.html"))) throw new Error(`No code animation bundle at ${options.prebuiltBundle} (index.html missing)`);
    return options.prebuiltBundle;
  }
  const started = performance.now();
  const { bundle } = await import("@remotion/bundler");
  if (options.bundleRoot) await mkdir(options.bundleRoot, { recursive: true });
  const dir = await mkdtemp(join(options.bundleRoot ?? tmpdir(), "code-animation-bundle-"));
  onDir(dir);
  process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  const serveUrl = await bundle({ entryPoint: COMPOSITION_ENTRY, outDir: dir, enableCaching: false, onProgress: () => undefined });
  options.logger?.info({ ms: Math.round(performance.now() - started) }, "code animation bundled");
  return serveUrl;
}

interface RendererSetup {
  options: CodeRendererOptions;
  browserExecutable: string;
  prepare: () => Promise<string>;
}

async function renderCode({ options, browserExecutable, prepare }: RendererSetup, { props, output, signal, onProgress }: RenderCodeOptions) {
  if (!existsSync(browserExecutable)) throw new Error(`Chromium not found at ${browserExecutable}`);
  const serveUrl = await prepare();
  if (signal?.aborted) throw new RenderCancelledError({ cause: signal.reason });
  const { durationInFrames } = codeTiming({ code: props.code, typingSpeed: props.typingSpeed, fps: props.fps });
  const { cancelSignal, cancel } = makeCancelSignal();
  const onAbort = () => cancel();
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    await renderMedia({
      composition: compositionOf(props, durationInFrames),
      serveUrl,
      inputProps: props,
      codec: "h264",
      pixelFormat: "yuv420p",
      // Limited-range BT.709 (what every other clip of a pipeline is), so a merge can stream-copy it:
      // Chromium's JPEG frames are full range and would otherwise make a yuvj420p stream.
      colorSpace: "bt709",
      crf: 20,
      x264Preset: "veryfast",
      imageFormat: "jpeg",
      outputLocation: output,
      overwrite: true,
      browserExecutable,
      chromeMode: "chrome-for-testing",
      chromiumOptions: CHROMIUM_OPTIONS,
      concurrency: options.concurrency ?? 1,
      timeoutInMilliseconds: options.frameTimeoutMs ?? 30_000,
      cancelSignal,
      logLevel: "error",
      onProgress: ({ progress }) => onProgress?.(progress * 100),
    });
  } catch (error) {
    if (signal?.aborted) throw new RenderCancelledError({ cause: error });
    throw error;
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
  return { durationInFrames, fps: props.fps };
}

/** The metadata calculateMetadata would compute, known here without opening a browser for it. */
function compositionOf(props: CodeAnimationProps, durationInFrames: number) {
  return {
    id: COMPOSITION_ID,
    width: props.width,
    height: props.height,
    fps: props.fps,
    durationInFrames,
    defaultProps: props,
    props,
    defaultCodec: null,
    defaultOutName: null,
    defaultVideoImageFormat: null,
    defaultPixelFormat: null,
    defaultProResProfile: null,
    defaultSampleRate: null,
  };
}
