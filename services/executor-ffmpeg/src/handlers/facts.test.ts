/**
 * The handlers describe their inputs by the probe facts the upstream nodes stored in their outputs instead
 * of probing the files again, and store the same facts in their own outputs for the nodes after them. Every
 * ffprobe start is counted (a wrapper first on PATH in front of the real ffprobe). Facts that lie about a
 * hostile or damaged file get it no further than before: the size check sends a different file to ffprobe,
 * ffmpeg's whitelists and damage check stop the rest.
 */
import { copyFile, mkdir, readFile, stat, truncate, utimes } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NodeOutput, SerializedNode } from "@vp/contracts";
import { makeSpeechClip, makeTestClip, probe, probeOfFacts, watchFfprobe, type FfprobeWatch } from "@vp/media";
import { assetKey, outputKey } from "@vp/storage";
import { createAssetWork } from "./asset";
import { createComposeVideoWork } from "./compose-video";
import { WorkInputError } from "./errors";
import { createMergeVideosWork } from "./merge-videos";
import { createMixAudioWork } from "./mix-audio";
import { createHandlerFixture, PIPELINE, type HandlerFixture } from "./test-fixture";
import type { WorkFunction } from "./types";

type Case = [WorkFunction, SerializedNode, Record<string, SerializedNode[]>];

let f: HandlerFixture;
let watch: FfprobeWatch;
/** Asset nodes completed by the asset work itself: their outputs carry the facts it stores. */
let seg1: SerializedNode, seg2: SerializedNode, voice: SerializedNode, overlay: SerializedNode;

const merge = createMergeVideosWork();
const mix = createMixAudioWork();
const compose = createComposeVideoWork();

/** Uploads `path` as an asset and runs the asset node on it, as the pipeline would. */
async function ingest(id: string, path: string, type: "video" | "audio", contentType: string): Promise<SerializedNode> {
  const key = assetKey(PIPELINE, id, "u1", path.split(".").pop()!);
  await f.storage.putFile(key, path);
  const node = f.node(id, "asset", { asset: { type, source: key, contentType } });
  const { output } = await createAssetWork()((await f.context(node)).ctx);
  return f.completed(id, output);
}

/** A node's stored output file, downloaded and probed for real (outside the counted window). */
async function probeStored(output: NodeOutput) {
  const local = join(f.dir, `check-${output.s3Key.split("/").slice(-2).join("-")}`);
  await f.storage.download(output.s3Key, local);
  return probe(local);
}

beforeAll(async () => {
  f = await createHandlerFixture();
  const clips = join(f.dir, "clips");
  await mkdir(clips);
  const [a, b, o, v] = ["a.mp4", "b.mp4", "o.mp4", "voice.m4a"].map((n) => join(clips, n)) as [string, string, string, string];
  await Promise.all([
    makeTestClip({ path: a, durationSeconds: 2, width: 320, height: 240, fps: 30 }),
    makeTestClip({ path: b, durationSeconds: 1.5, width: 320, height: 240, fps: 30, color: "#336699" }),
    makeTestClip({ path: o, durationSeconds: 2, width: 160, height: 120, fps: 30, color: "red" }),
    makeSpeechClip({ path: v, text: "facts", durationSeconds: 3, workDir: clips }),
  ]);
  [seg1, seg2, overlay] = await Promise.all([
    ingest("s1", a, "video", "video/mp4"),
    ingest("s2", b, "video", "video/mp4"),
    ingest("o1", o, "video", "video/mp4"),
  ]);
  voice = await ingest("v1", v, "audio", "audio/mp4");
  await mkdir(join(f.dir, "bin"));
  watch = await watchFfprobe(join(f.dir, "bin"));
});
afterAll(async () => {
  watch?.stop();
  await f?.cleanup();
});

describe("stored probe facts", () => {
  it("merge -> mix -> compose: no ffprobe of any input, none of the copy outputs, and each output's facts are what ffprobe says", async () => {
    await watch.reset();
    const m = f.node("m1", "merge-videos");
    const { output: merged } = await merge((await f.context(m, { segments: [seg1, seg2, seg1] })).ctx);
    expect(await watch.count()).toBe(0);
    expect(merged.strategy).toBe("copy");

    const mixNode = f.completed("m1", merged);
    await watch.reset();
    const { output: mixed } = await mix((await f.context(f.node("x1", "mix-audio"), { video: [mixNode], audio: [voice] })).ctx);
    expect(await watch.count()).toBe(0);

    await watch.reset();
    const { output: composed } = await compose(
      (await f.context(f.node("c1", "compose-video"), { background: [f.completed("x1", mixed)], overlays: [overlay] })).ctx,
    );
    // The composite is an encode: its output alone is probed.
    expect(await watch.count()).toBe(1);

    for (const output of [merged, mixed, composed]) {
      const real = await probeStored(output);
      expect(probeOfFacts(output)).toEqual({ ...real, durationSeconds: output.duration });
    }
    expect(merged.duration).toBeCloseTo(5.5, 1);
    expect(mixed.duration).toBeCloseTo(5.5, 1);
  });

  it("outputs stored before the facts existed are probed, as before", async () => {
    const old = (n: SerializedNode): SerializedNode => {
      const { type, s3Key, duration, size, width, height, videoCodec, audioCodec, contentType } = n.output!;
      return f.completed(n.id, { type, s3Key, duration, size, width, height, videoCodec, audioCodec, contentType });
    };
    await watch.reset();
    const { output } = await merge((await f.context(f.node("m2", "merge-videos"), { segments: [old(seg1), old(seg2)] })).ctx);
    expect(await watch.count()).toBe(2);
    expect(output.strategy).toBe("copy");
  });

  it("facts that do not match the stored file: the file is probed for what it is, and a hostile one is refused", async () => {
    // A playlist naming a file outside the job directory, stored under a segment's facts (another size).
    const secret = join(f.dir, "secret.mp4");
    await copyFile(join(f.dir, "clips", "a.mp4"), secret);
    const old = new Date("2001-01-01T00:00:00Z");
    await utimes(secret, old, new Date());
    const key = outputKey(PIPELINE, "hls", "j", "mp4");
    await f.storage.put(key, Buffer.from(`#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n${secret}\n#EXT-X-ENDLIST\n`));
    const inconsistent = f.completed("hls", { ...seg2.output!, s3Key: key });
    await watch.reset();
    const error = await merge((await f.context(f.node("m3", "merge-videos"), { segments: [seg1, inconsistent] })).ctx).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WorkInputError);
    expect((error as Error).message).toBe('segment "hls": not a readable media file: its format (hls) is not an accepted media container');
    expect(await watch.count()).toBe(1);

    // The same with facts forged to its exact size: nothing is probed, and ffmpeg's whitelist refuses it.
    const forged = f.completed("hls", { ...seg2.output!, s3Key: key, size: (await f.storage.stat(key))!.size });
    const cases: Case[] = [
      [merge, f.node("m4", "merge-videos"), { segments: [seg1, forged] }],
      [mix, f.node("x4", "mix-audio"), { video: [forged], audio: [voice] }],
      [compose, f.node("c4", "compose-video"), { background: [seg1], overlays: [forged] }],
    ];
    for (const [fn, node, inputs] of cases) {
      await watch.reset();
      const refused = await fn((await f.context(node, inputs)).ctx).catch((e: unknown) => e);
      expect(refused, String(refused)).toBeInstanceOf(WorkInputError);
      expect((refused as Error).message).toMatch(/Format not allowed: not a single media file/);
      expect(await watch.count()).toBe(0);
    }
    expect((await stat(secret)).atimeMs).toBeLessThan(old.getTime() + 1000);
  });

  it("a truncated MP4 under the whole file's facts (forged to its cut size) still fails the node", async () => {
    const local = join(f.dir, "cut.mp4");
    await f.storage.download(seg1.output!.s3Key, local);
    await truncate(local, Math.floor((await stat(local)).size / 2));
    const key = outputKey(PIPELINE, "cut", "j", "mp4");
    await f.storage.put(key, await readFile(local));
    const cut = f.completed("cut", { ...seg1.output!, s3Key: key, size: (await stat(local)).size });
    const cases: Case[] = [
      [merge, f.node("m5", "merge-videos"), { segments: [cut, seg2] }],
      [mix, f.node("x5", "mix-audio"), { video: [cut], audio: [voice] }],
    ];
    for (const [fn, node, inputs] of cases) {
      await watch.reset();
      const { ctx } = await f.context(node, inputs);
      const error = await fn(ctx).catch((e: unknown) => e);
      expect(await watch.count()).toBe(0);
      expect(error, String(error)).toBeInstanceOf(WorkInputError);
      expect((error as Error).message).toMatch(/partial file|Invalid NAL unit size|corrupt input packet/);
      expect(await f.storage.stat(outputKey(PIPELINE, node.id, ctx.job.jobId, "mp4"))).toBeNull();
    }
  });
});
