import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { factsOfProbe, makeTestClip, probe, probeOfFacts, watchFfprobe } from "@vp/media";
import { createLocalStorage, NotFoundError, type Storage } from "@vp/storage";
import { LambdaInputError } from "../shared/runtime";
import { createHandler, VideoMergerEventError } from "./handler";

let dir: string;
let storage: Storage;
let tmpRoot: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "vp-video-merger-"));
  storage = createLocalStorage({ root: join(dir, "storage") });
  tmpRoot = join(dir, "tmp");
  await mkdir(tmpRoot);
  const clips: [string, number, number, number][] = [
    ["in/a.mp4", 2, 320, 240],
    ["in/b.mp4", 1.5, 320, 240],
    ["in/c.mp4", 3, 640, 360],
  ];
  await Promise.all(
    clips.map(async ([key, d, w, h], i) => {
      const path = join(dir, `clip-${i}.mp4`);
      await makeTestClip({ path, durationSeconds: d, width: w, height: h, fps: 30 });
      await storage.putFile(key, path);
    }),
  );
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("video-merger handler", () => {
  it("merges stored segments into the output key and cleans up after itself", async () => {
    const handler = createHandler({ storage, tmpRoot });
    const result = await handler({ input_keys: ["in/a.mp4", "in/b.mp4", "in/c.mp4"], output_key: "out/merged.mp4" });
    expect(result).toMatchObject({ s3_key: "out/merged.mp4", strategy: "reencode" });
    expect(Math.abs(result.duration - 6.5)).toBeLessThanOrEqual(0.1);
    expect(result.size).toBe((await storage.stat("out/merged.mp4"))!.size);
    expect(result.cost).toBeGreaterThan(0);

    const local = join(dir, "check.mp4");
    await storage.download("out/merged.mp4", local);
    expect((await probe(local)).video).toMatchObject({ width: 320, height: 240 });
    expect(await readdir(tmpRoot)).toEqual([]);

    const copy = await handler({ input_keys: ["in/a.mp4", "in/b.mp4"], output_key: "out/copy.mp4", reencode: false });
    expect(copy.strategy).toBe("copy");
    expect(Math.abs(copy.duration - 3.5)).toBeLessThanOrEqual(0.1);
  });

  it("takes the inputs' stored probe facts from the event (no ffprobe of them) and answers with the output's", async () => {
    const handler = createHandler({ storage, tmpRoot });
    const facts = Object.fromEntries(
      await Promise.all(
        ["in/a.mp4", "in/b.mp4"].map(async (key) => {
          const local = join(dir, `facts-${key.replace("/", "-")}`);
          await storage.download(key, local);
          return [key, factsOfProbe(await probe(local))] as const;
        }),
      ),
    );
    await mkdir(join(dir, "bin"), { recursive: true });
    const watch = await watchFfprobe(join(dir, "bin"));
    try {
      const result = await handler({ input_keys: ["in/a.mp4", "in/b.mp4", "in/a.mp4"], output_key: "out/facts.mp4", input_facts: facts });
      expect(await watch.count()).toBe(0);
      expect(result.strategy).toBe("copy");
      const local = join(dir, "facts-check.mp4");
      await storage.download("out/facts.mp4", local);
      const real = await probe(local);
      expect(probeOfFacts(result.facts)).toEqual({ ...real, durationSeconds: result.facts!.duration });
      expect(result.facts!.size).toBe(result.size);
    } finally {
      watch.stop();
    }
    expect(await readdir(tmpRoot)).toEqual([]);
  });

  it("rejects events that break the contract before touching storage", async () => {
    const handler = createHandler({ storage, tmpRoot });
    const bad: unknown[] = [
      null,
      { input_keys: [], output_key: "out/x.mp4" },
      { input_keys: ["../../etc/passwd"], output_key: "out/x.mp4" },
      { input_keys: ["in/a.mp4"], output_key: "/tmp/x.mp4" },
      { input_keys: ["s3://bucket/a.mp4"], output_key: "out/x.mp4" },
      { input_keys: ["in/a.mp4"], output_key: "out/x.mp4", width: 10 },
      { input_keys: ["in/a.mp4"], output_key: "out/x.mp4", reencode: "sometimes" },
    ];
    for (const event of bad) await expect(handler(event)).rejects.toBeInstanceOf(VideoMergerEventError);
    // A missing input reaches the executor as errorType LambdaInputError (final), caused by the storage's NotFoundError.
    const missing = await handler({ input_keys: ["in/missing.mp4"], output_key: "out/x.mp4" }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(LambdaInputError);
    expect((missing as Error).cause).toBeInstanceOf(NotFoundError);
    expect(await readdir(tmpRoot)).toEqual([]);
  });
});
