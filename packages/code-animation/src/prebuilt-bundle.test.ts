import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCodeRenderer } from "./render";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "vp-prebuilt-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("a renderer given a bundle built ahead of time (the executor-ffmpeg image's CODE_ANIMATION_BUNDLE)", () => {
  it("serves that directory as is, without bundling, and never removes it", async () => {
    await writeFile(join(dir, "index.html"), "<!doctype html>");
    const renderer = createCodeRenderer({ prebuiltBundle: dir });
    const started = performance.now();
    expect(await renderer.prepare()).toBe(dir);
    // Bundling takes tens of seconds; serving a directory is immediate.
    expect(performance.now() - started).toBeLessThan(1000);
    await renderer.close();
    expect(existsSync(join(dir, "index.html"))).toBe(true);
  });

  it("refuses a directory that holds no bundle, naming it", async () => {
    const empty = await mkdtemp(join(tmpdir(), "vp-prebuilt-empty-"));
    try {
      await expect(createCodeRenderer({ prebuiltBundle: empty }).prepare()).rejects.toThrow(`No code animation bundle at ${empty}`);
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});
