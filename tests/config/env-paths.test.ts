/**
 * Every service's path settings are absolute once its environment is loaded: the defaults (relative to the
 * directory the service starts in, as `npm start` runs them) and relative values alike. A relative path handed on
 * (Remotion's webpack bundler refuses one for output.path) broke render-code on `npm start`'s own configuration.
 */
import { mkdtemp, realpath, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { isAbsolute, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { optionalPathSetting, pathSetting } from "@vp/runtime";
import { loadEnv as loadExecutorAiEnv } from "../../services/executor-ai/src/env";
import { loadEnv as loadExecutorFfmpegEnv } from "../../services/executor-ffmpeg/src/env";
import { loadEnv as loadGatewayEnv } from "../../services/gateway/src/env";
import { loadEnv as loadSchedulerEnv } from "../../services/scheduler/src/env";
import { loadEnv as loadStateWriterEnv } from "../../services/state-writer/src/env";

const LOADERS: Record<string, (source: NodeJS.ProcessEnv) => Record<string, unknown>> = {
  gateway: loadGatewayEnv,
  scheduler: loadSchedulerEnv,
  "state-writer": loadStateWriterEnv,
  "executor-ffmpeg": loadExecutorFfmpegEnv,
  "executor-ai": loadExecutorAiEnv,
};

/** Settings that name a file or directory, by the naming rule of the env schemas. */
const PATH_KEY = /(_ROOT|_PATH|_FILE|_DIR|_BUNDLE)$/;

let cwd: string;
let previous: string;

beforeAll(async () => {
  // A directory of its own, so "resolved against the working directory" is told apart from the repository's.
  previous = process.cwd();
  cwd = await realpath(await mkdtemp(join(tmpdir(), "vp-env-paths-")));
  process.chdir(cwd);
});

afterAll(async () => {
  process.chdir(previous);
  await rm(cwd, { recursive: true, force: true });
});

describe("path settings", () => {
  it("are absolute in every service's environment loaded with the defaults, under the directory it started in", () => {
    const seen: string[] = [];
    for (const [service, load] of Object.entries(LOADERS)) {
      const env = load({});
      for (const [key, value] of Object.entries(env)) {
        if (!PATH_KEY.test(key) || value === undefined) continue;
        seen.push(`${service}.${key}`);
        expect(typeof value, `${service}.${key}`).toBe("string");
        expect(isAbsolute(value as string), `${service}.${key} = ${String(value)}`).toBe(true);
      }
    }
    expect(seen).toEqual(
      expect.arrayContaining([
        "executor-ai.STORAGE_ROOT",
        "executor-ai.WORK_ROOT",
        "executor-ffmpeg.CHROMIUM_PATH",
        "executor-ffmpeg.STORAGE_ROOT",
        "executor-ffmpeg.WORK_ROOT",
        "gateway.STORAGE_ROOT",
      ]),
    );
    expect(loadGatewayEnv({}).STORAGE_ROOT).toBe(join(cwd, ".data/storage"));
    expect(loadExecutorFfmpegEnv({})).toMatchObject({
      STORAGE_ROOT: join(cwd, ".data/storage"),
      WORK_ROOT: join(cwd, ".data/work/executor-ffmpeg"),
      CHROMIUM_PATH: "/usr/bin/chromium",
    });
    expect(loadExecutorAiEnv({})).toMatchObject({ STORAGE_ROOT: join(cwd, ".data/storage"), WORK_ROOT: join(cwd, ".data/work/executor-ai") });
  });

  it("resolves relative values against the working directory, keeps absolute ones, and treats blank as unset", () => {
    expect(loadExecutorFfmpegEnv({ WORK_ROOT: "scratch/ffmpeg", STORAGE_ROOT: "/srv/media", CODE_ANIMATION_BUNDLE: "build/code-animation" })).toMatchObject({
      WORK_ROOT: join(cwd, "scratch/ffmpeg"),
      STORAGE_ROOT: "/srv/media",
      CODE_ANIMATION_BUNDLE: join(cwd, "build/code-animation"),
    });
    expect(loadGatewayEnv({ STORAGE_ROOT: "../shared/./storage" }).STORAGE_ROOT).toBe(join(cwd, "../shared/storage"));
    expect(loadExecutorAiEnv({ PRICE_TABLE_FILE: "prices.json", LOCAL_FONT_FILE: "fonts/Sans.ttf" })).toMatchObject({
      PRICE_TABLE_FILE: join(cwd, "prices.json"),
      LOCAL_FONT_FILE: join(cwd, "fonts/Sans.ttf"),
    });
    expect(loadExecutorAiEnv({ WORK_ROOT: "  ", PRICE_TABLE_FILE: "" })).toMatchObject({ WORK_ROOT: join(cwd, ".data/work/executor-ai") });
    expect(loadExecutorAiEnv({ PRICE_TABLE_FILE: "" }).PRICE_TABLE_FILE).toBeUndefined();
    expect(pathSetting("a/b").parse(undefined)).toBe(join(cwd, "a/b"));
    expect(optionalPathSetting().parse(undefined)).toBeUndefined();
  });
});
