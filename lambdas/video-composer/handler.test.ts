import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeFrame, makeTestClip, regionDifference } from "@vp/media";
import type { Storage } from "@vp/storage";
import { startTestS3, type TestS3 } from "@vp/storage/testing";
import { createHandler, VideoComposerEventError } from "./handler";

let dir: string;
let s3: TestS3;
let storage: Storage;
let tmpRoot: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "vp-video-composer-"));
  s3 = await startTestS3();
  storage = s3.storage("lambda");
  tmpRoot = join(dir, "tmp");
  await mkdir(tmpRoot);
  const bg = join(dir, "bg.mp4");
  const ov = join(dir, "ov.mp4");
  await Promise.all([
    makeTestClip({ path: bg, durationSeconds: 2, width: 640, height: 360, fps: 25 }),
    makeTestClip({ path: ov, durationSeconds: 1, width: 320, height: 180, fps: 25, color: "yellow" }),
  ]);
  await storage.putFile("in/bg.mp4", bg);
  await storage.putFile("in/ov.mp4", ov);
});
afterAll(async () => {
  await s3?.close();
  await rm(dir, { recursive: true, force: true });
});

describe("video-composer handler (S3 on s3rver)", () => {
  it("composes, uploads the MP4 and answers with the function payload", async () => {
    const handler = createHandler({ storage, tmpRoot });
    const result = await handler({
      background_key: "in/bg.mp4",
      overlay_keys: ["in/ov.mp4"],
      output_key: "out/pip.mp4",
      config: { overlays: [{ position: "top-left", size: 0.5, margin: 0 }] },
    });
    expect(result).toMatchObject({ s3_key: "out/pip.mp4", width: 640, height: 360, video_codec: "h264", audio_codec: "aac" });
    expect(Math.abs(result.duration - 2)).toBeLessThanOrEqual(0.05);
    expect(result.cost).toBeGreaterThan(0);
    const out = join(dir, "pip.mp4");
    const bg = join(dir, "bg-check.mp4");
    await storage.download("out/pip.mp4", out);
    await storage.download("in/bg.mp4", bg);
    const size = { width: 640, height: 360 };
    const [a, b] = await Promise.all([decodeFrame(out, 0.5, size), decodeFrame(bg, 0.5, size)]);
    expect(regionDifference(a, b, { x: 0, y: 0, width: 320, height: 180 })).toBeGreaterThan(30);
    expect(regionDifference(a, b, { x: 330, y: 190, width: 300, height: 160 })).toBeLessThan(6);
    expect(await readdir(tmpRoot)).toEqual([]);
  });

  it("rejects events that break the contract", async () => {
    const handler = createHandler({ storage, tmpRoot });
    for (const event of [
      { background_key: "in/bg.mp4", overlay_keys: [], output_key: "out/x.mp4" },
      { background_key: "in/bg.mp4", overlay_keys: ["in/ov.mp4\nfile '/etc/passwd'"], output_key: "out/x.mp4" },
      { background_key: "in/bg.mp4", overlay_keys: ["in/ov.mp4"], output_key: "/abs/x.mp4" },
      { background_key: "in/bg.mp4", overlay_keys: ["in/ov.mp4"], output_key: "out/x.mp4", config: { overlays: [{ borderColor: "red:x" }] } },
    ]) {
      await expect(handler(event)).rejects.toBeInstanceOf(VideoComposerEventError);
    }
    expect(await readdir(tmpRoot)).toEqual([]);
  });
});
