/**
 * Hostile inputs at the node: they fail the node with a reason (WorkInputError: no retry) and
 * nothing outside the job's directory is read or written. "Not read" is the file's atime: on a relatime
 * mount, a read of a file whose atime is older than its mtime updates it (a control read proves it here).
 */
import { copyFile, mkdir, readdir, readFile, stat, truncate, utimes } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { NodeOutput, SerializedNode } from "@vp/contracts";
import { makeSpeechClip, makeTestClip, probe } from "@vp/media";
import { outputKey } from "@vp/storage";
import { createAssetWork } from "./asset";
import { createComposeVideoWork } from "./compose-video";
import { WorkInputError } from "./errors";
import { createMergeVideosWork } from "./merge-videos";
import { createMixAudioWork } from "./mix-audio";
import { createHandlerFixture, PIPELINE, type HandlerFixture } from "./test-fixture";
import type { WorkContext, WorkFunction } from "./types";

const OLD = new Date("2001-01-01T00:00:00Z");
const arm = (path: string) => utimes(path, OLD, new Date());
const wasRead = async (path: string) => (await stat(path)).atimeMs > OLD.getTime() + 1000;

let f: HandlerFixture;
let outside: string;
let secret: string;
let good: SerializedNode, voice: SerializedNode;

const work: Record<"merge" | "mix" | "compose", WorkFunction> = {
  merge: createMergeVideosWork(),
  mix: createMixAudioWork(),
  compose: createComposeVideoWork(),
};

/** A video output whose stored bytes are `bytes` (as a forged or broken upstream would leave them). */
async function storedVideo(id: string, bytes: Buffer | string): Promise<SerializedNode> {
  const key = outputKey(PIPELINE, id, "j", "mp4");
  await f.storage.put(key, typeof bytes === "string" ? Buffer.from(bytes) : bytes);
  return f.completed(id, { type: "video", s3Key: key, contentType: "video/mp4" });
}

/** Runs `fn` and checks it failed the node with a reason matching `reason`, leaving the outside untouched. */
async function expectCleanFailure(ctx: WorkContext, fn: WorkFunction, reason: RegExp) {
  const before = (await readdir(outside)).sort();
  const error = await fn(ctx).catch((e: unknown) => e);
  expect(error, String(error)).toBeInstanceOf(WorkInputError);
  expect((error as Error).message).toMatch(reason);
  expect((error as Error).message).not.toContain(f.dir);
  expect((await readdir(outside)).sort()).toEqual(before);
  expect(await wasRead(secret)).toBe(false);
  // Only generated names were ever written in the job directory, and no output was stored.
  for (const name of await readdir(ctx.workDir)) expect(name).toMatch(/^(seg-\d{3}|video|audio|background|overlay-\d{3}|asset)\.(mp4|m4a|wav)$/);
  expect(await f.storage.stat(outputKey(PIPELINE, ctx.job.nodeId, ctx.job.jobId, "mp4"))).toBeNull();
}

beforeAll(async () => {
  f = await createHandlerFixture();
  outside = join(f.dir, "outside");
  await mkdir(outside);
  secret = join(outside, "secret.mp4");
  await makeTestClip({ path: secret, durationSeconds: 2, width: 320, height: 240, fps: 30 });
  const goodKey = await f.storeClip(outputKey(PIPELINE, "good", "j", "mp4"), { durationSeconds: 2, width: 320, height: 240, fps: 30 });
  good = f.completed("good", { type: "video", s3Key: goodKey, duration: 2, videoCodec: "h264", audioCodec: "aac", contentType: "video/mp4" });
  const voicePath = join(f.dir, "voice.wav");
  await makeSpeechClip({ path: voicePath, text: "hostile", durationSeconds: 1, workDir: f.dir });
  const voiceKey = outputKey(PIPELINE, "voice", "j", "wav");
  await f.storage.putFile(voiceKey, voicePath);
  voice = f.completed("voice", { type: "audio", s3Key: voiceKey, audioCodec: "pcm_s16le", contentType: "audio/wav" });
});
afterAll(async () => {
  await f?.cleanup();
});

describe("hostile inputs fail the node cleanly", () => {
  beforeEach(() => arm(secret));

  it("the atime check can see a read (control)", async () => {
    const control = join(f.dir, "control.mp4");
    await copyFile(secret, control);
    await arm(control);
    await probe(control);
    expect(await wasRead(control)).toBe(true);
  });

  it("a 'video' that is an HLS playlist naming a file outside the job directory", async () => {
    const playlist = await storedVideo("hls", `#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n${secret}\n#EXT-X-ENDLIST\n`);
    const reason = /not an accepted media container/;
    await expectCleanFailure((await f.context(f.node("m1", "merge-videos"), { segments: [good, playlist] })).ctx, work.merge, reason);
    await expectCleanFailure((await f.context(f.node("x1", "mix-audio"), { video: [playlist], audio: [voice] })).ctx, work.mix, reason);
    await expectCleanFailure((await f.context(f.node("c1", "compose-video"), { background: [good], overlays: [playlist] })).ctx, work.compose, reason);
    // The asset ingest refuses the same upload at the door.
    const asset = f.node("up", "asset", { asset: { type: "video", source: playlist.output!.s3Key, contentType: "video/mp4" } });
    await expectCleanFailure(
      (await f.context(asset)).ctx,
      createAssetWork(),
      /^Asset file: not a readable media file: its format \(hls\) is not an accepted media container$/,
    );
  });

  it("storage keys with quotes and newlines (a forged output) never reach a file name or a concat list", async () => {
    for (const key of ["pipelines/p1/nodes/q/j/it's.mp4", "pipelines/p1/nodes/q/j/a.mp4\nfile '/etc/passwd'", "../../etc/passwd"]) {
      const forged = f.completed("q", { type: "video", s3Key: key } as NodeOutput);
      await expectCleanFailure((await f.context(f.node("m2", "merge-videos"), { segments: [good, forged] })).ctx, work.merge, /^segment "q": storage key/);
      await expectCleanFailure(
        (await f.context(f.node("x2", "mix-audio"), { video: [forged], audio: [voice] })).ctx,
        work.mix,
        /^input "video" \(node "q"\): storage key/,
      );
    }
  });

  it("a 0-byte file", async () => {
    const empty = await storedVideo("empty", "");
    const reason = /not a readable media file/;
    await expectCleanFailure((await f.context(f.node("m3", "merge-videos"), { segments: [empty, good] })).ctx, work.merge, reason);
    await expectCleanFailure((await f.context(f.node("c3", "compose-video"), { background: [empty], overlays: [good] })).ctx, work.compose, reason);
  });

  it("a truncated MP4 (its header intact)", async () => {
    const local = join(f.dir, "truncated.mp4");
    await makeTestClip({ path: local, durationSeconds: 2, width: 320, height: 240, fps: 30 });
    await truncate(local, Math.floor((await stat(local)).size / 2));
    const cut = await storedVideo("cut", await readFile(local));
    const reason = /partial file|Invalid NAL unit size|corrupt input packet/;
    await expectCleanFailure((await f.context(f.node("m4", "merge-videos"), { segments: [cut, good] })).ctx, work.merge, reason);
    await expectCleanFailure((await f.context(f.node("x4", "mix-audio"), { video: [cut], audio: [voice] })).ctx, work.mix, reason);
    await expectCleanFailure((await f.context(f.node("c4", "compose-video"), { background: [good], overlays: [cut] })).ctx, work.compose, reason);
  });

  it("an audio file given as a video", async () => {
    const audioAsVideo = f.completed("aav", { type: "video", s3Key: voice.output!.s3Key, contentType: "audio/wav" });
    await expectCleanFailure(
      (await f.context(f.node("m5", "merge-videos"), { segments: [good, audioAsVideo] })).ctx,
      work.merge,
      /^segment "aav": expected a video file but it has no video stream$/,
    );
    await expectCleanFailure(
      (await f.context(f.node("x5", "mix-audio"), { video: [audioAsVideo], audio: [voice] })).ctx,
      work.mix,
      /^input "video" \(node "aav"\): expected a video file/,
    );
    await expectCleanFailure(
      (await f.context(f.node("c5", "compose-video"), { background: [audioAsVideo], overlays: [good] })).ctx,
      work.compose,
      /^input "background" \(node "aav"\): expected a video file/,
    );
    // Declared as what it is, the contract check refuses it before anything is downloaded.
    const declared = f.completed("decl", { type: "audio", s3Key: voice.output!.s3Key, audioCodec: "pcm_s16le" });
    const { ctx } = await f.context(f.node("c6", "compose-video"), { background: [good], overlays: [declared] });
    await expectCleanFailure(ctx, work.compose, /^input "overlays": node "decl" produces audio, but overlays needs a video$/);
    expect(await readdir(ctx.workDir)).toEqual([]);
    // And an upload declared as video whose file is audio never becomes a video output.
    const asset = f.node("up2", "asset", { asset: { type: "video", source: voice.output!.s3Key, contentType: "video/mp4" } });
    await expectCleanFailure((await f.context(asset)).ctx, createAssetWork(), /expected a video file but it has no video stream/);
  });
});
