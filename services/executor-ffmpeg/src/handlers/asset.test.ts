import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { readdir, readFile } from "node:fs/promises";
import { makeTestClip, probe, probeOfFacts, runFfmpeg } from "@vp/media";
import { assetKey, outputKey } from "@vp/storage";
import { createAssetWork } from "./asset";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WorkInputError } from "./errors";
import { parseCidr } from "@vp/url-guard";
import { createHandlerFixture, PIPELINE, type HandlerFixture } from "./test-fixture";

let f: HandlerFixture;
beforeAll(async () => {
  f = await createHandlerFixture();
});
afterAll(async () => {
  await f.cleanup();
});

describe("asset work", () => {
  const work = createAssetWork();

  it("describes an uploaded video without moving it", async () => {
    const key = await f.storeClip(assetKey(PIPELINE, "v1", "u1", "mp4"), { durationSeconds: 1, width: 320, height: 240, fps: 30 });
    const { ctx } = await f.context(f.node("v1", "asset", { asset: { type: "video", source: key, contentType: "video/mp4" } }));
    const { output, cost } = await work(ctx);
    expect(cost).toBe(0);
    expect(output).toMatchObject({ type: "video", s3Key: key, width: 320, height: 240, videoCodec: "h264", audioCodec: "aac", contentType: "video/mp4" });
    expect(output.duration).toBeCloseTo(1, 1);
    expect(output.size).toBe((await f.storage.stat(key))!.size);
    // The rest of the probe, so the nodes reading this file need not probe it again.
    const p = await probe(join(ctx.workDir, "asset.mp4"));
    expect(output).toMatchObject({
      formatName: p.formatName,
      videoProfile: p.video!.profile,
      pixFmt: "yuv420p",
      fps: 30,
      videoTimeBase: p.video!.timeBase,
      sampleRate: 48000,
      audioChannels: 2,
      audioChannelLayout: "stereo",
    });
    expect(probeOfFacts(output)).toEqual({ ...p, durationSeconds: output.duration });
    expect(await readdir(ctx.workDir)).toEqual(["asset.mp4"]);
  });

  it("describes an uploaded audio file", async () => {
    const local = join(f.dir, "tone.m4a");
    await makeTestClip({ path: join(f.dir, "tone.mp4"), durationSeconds: 1, width: 64, height: 64, fps: 10 });
    // An audio-only file: the clip's audio stream copied out.
    await runFfmpeg(["-i", `file:${join(f.dir, "tone.mp4")}`, "-vn", "-c:a", "copy", "-f", "mp4", `file:${local}`]);
    const key = assetKey(PIPELINE, "a1", "u1", "m4a");
    await f.storage.putFile(key, local);
    const { ctx } = await f.context(f.node("a1", "asset", { asset: { type: "audio", source: key, contentType: "audio/mp4" } }));
    const { output } = await work(ctx);
    expect(output).toMatchObject({
      type: "audio",
      s3Key: key,
      audioCodec: "aac",
      sampleRate: 48000,
      audioChannels: 2,
      formatName: expect.stringContaining("mp4"),
    });
    expect(output.width).toBeUndefined();
    expect(output.pixFmt).toBeUndefined();
  });

  it("describes an uploaded image", async () => {
    const png = join(f.dir, "frame.png");
    await runFfmpeg(["-f", "lavfi", "-i", "testsrc2=s=200x100:d=1", "-frames:v", "1", "-f", "image2", `file:${png}`]);
    const key = assetKey(PIPELINE, "i1", "u1", "png");
    await f.storage.putFile(key, png);
    const { ctx } = await f.context(f.node("i1", "asset", { asset: { type: "image", source: key, contentType: "image/png" } }));
    const { output } = await work(ctx);
    expect(output).toEqual({
      type: "image",
      s3Key: key,
      size: (await f.storage.stat(key))!.size,
      width: 200,
      height: 100,
      videoCodec: "png",
      contentType: "image/png",
    });
  });

  it("fails without an uploaded file", async () => {
    const { ctx } = await f.context(f.node("v2", "asset", { asset: { type: "video" } }));
    await expect(work(ctx)).rejects.toThrow(new WorkInputError("Asset has no uploaded file"));
  });

  it("fails on a file that is not media, with ffprobe's reason", async () => {
    const key = assetKey(PIPELINE, "v3", "u1", "mp4");
    await f.storage.put(key, Buffer.from("definitely not a video"));
    const { ctx } = await f.context(f.node("v3", "asset", { asset: { type: "video", source: key, contentType: "video/mp4" } }));
    const error = await work(ctx).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WorkInputError);
    expect((error as Error).message).toMatch(/^Asset file: not a readable media file: .*Invalid data found when processing input$/);
    expect((error as Error).message).not.toContain(f.dir);
  });

  it("fails on a video asset whose file has no video stream", async () => {
    const audioOnly = join(f.dir, "audio-only.mp4");
    await makeTestClip({ path: join(f.dir, "src.mp4"), durationSeconds: 1, width: 64, height: 64, fps: 10 });
    await runFfmpeg(["-i", `file:${join(f.dir, "src.mp4")}`, "-vn", "-c:a", "copy", "-f", "mp4", `file:${audioOnly}`]);
    const key = assetKey(PIPELINE, "v4", "u1", "mp4");
    await f.storage.putFile(key, audioOnly);
    const { ctx } = await f.context(f.node("v4", "asset", { asset: { type: "video", source: key } }));
    await expect(work(ctx)).rejects.toThrow(new WorkInputError("expected a video file but it has no video stream"));
  });

  it("fails when the uploaded file is gone or the key is not a storage key", async () => {
    const { ctx } = await f.context(f.node("v5", "asset", { asset: { type: "video", source: assetKey(PIPELINE, "v5", "gone", "mp4") } }));
    await expect(work(ctx)).rejects.toBeInstanceOf(WorkInputError);
    const { ctx: ctx2 } = await f.context(f.node("v6", "asset", { asset: { type: "video", source: "../../etc/passwd" } }));
    await expect(work(ctx2)).rejects.toThrow(/Asset file: storage key/);
  });

  it("stores inline text and JSON as the node's output", async () => {
    const { ctx, jobId } = await f.context(f.node("t1", "asset", { asset: { type: "text", content: "Hello, world." } }));
    const { output } = await work(ctx);
    expect(output).toEqual({ type: "text", s3Key: outputKey(PIPELINE, "t1", jobId, "txt", 1), size: 13, contentType: "text/plain; charset=utf-8" });
    expect((await f.storage.getBuffer(output.s3Key)).toString()).toBe("Hello, world.");

    const { ctx: jctx, jobId: jJob } = await f.context(f.node("j1", "asset", { asset: { type: "json", content: '{"a":[1,2]}' } }));
    expect((await work(jctx)).output).toMatchObject({ type: "json", s3Key: outputKey(PIPELINE, "j1", jJob, "json", 1), size: 11 });

    const { ctx: bad } = await f.context(f.node("j2", "asset", { asset: { type: "json", content: "{not json" } }));
    await expect(work(bad)).rejects.toThrow(/^Asset content is not valid JSON/);
  });

  it("uses an uploaded text file where it is", async () => {
    const key = assetKey(PIPELINE, "t2", "u1", "txt");
    await f.storage.put(key, Buffer.from("script"));
    const { ctx } = await f.context(f.node("t2", "asset", { asset: { type: "text", source: key, contentType: "text/plain" } }));
    expect((await work(ctx)).output).toEqual({ type: "text", s3Key: key, size: 6, contentType: "text/plain" });
    const { ctx: empty } = await f.context(f.node("t3", "asset", { asset: { type: "text" } }));
    await expect(work(empty)).rejects.toBeInstanceOf(WorkInputError);
  });
});

describe("asset work: URL assets", () => {
  /** A fake media host on 127.0.0.2 (the only internal address these tests allow), and a trap on 127.0.0.1. */
  let media: Server;
  let trap: Server;
  let mediaOrigin = "";
  let trapPort = 0;
  const trapped: string[] = [];
  const files = new Map<string, { type: string; body: Buffer }>();
  const work = createAssetWork({ urls: { allow: [parseCidr("127.0.0.2/32")], maxBytes: 50 * 1024 * 1024, timeoutMs: 20_000 } });

  beforeAll(async () => {
    const clip = join(f.dir, "url-clip.mp4");
    await makeTestClip({ path: clip, durationSeconds: 1, width: 160, height: 120, fps: 10 });
    files.set("/clip.mp4", { type: "video/mp4", body: await readFile(clip) });
    files.set("/clip-as-html", { type: "text/html", body: await readFile(clip) });
    files.set("/page.html", { type: "text/html", body: Buffer.from("<html>not a video</html>") });
    media = createServer((req, res) => {
      const path = new URL(req.url!, "http://x").pathname;
      if (path === "/to-loopback") return res.writeHead(302, { location: `http://127.0.0.1:${trapPort}/secret` }).end();
      const file = files.get(path);
      if (!file) return res.writeHead(404).end();
      res.writeHead(200, { "content-type": file.type, "content-length": file.body.length }).end(file.body);
    });
    trap = createServer((req, res) => {
      trapped.push(req.url!);
      res.end("secret");
    });
    await new Promise<void>((r) => media.listen(0, "127.0.0.2", r));
    await new Promise<void>((r) => trap.listen(0, "127.0.0.1", r));
    mediaOrigin = `http://127.0.0.2:${(media.address() as { port: number }).port}`;
    trapPort = (trap.address() as { port: number }).port;
  });
  afterAll(async () => {
    await new Promise((r) => media?.close(r));
    await new Promise((r) => trap?.close(r));
  });

  it("downloads, probes and stores a video under the node's output key", async () => {
    const { ctx, jobId, progress } = await f.context(f.node("u1", "asset", { asset: { type: "video", url: `${mediaOrigin}/clip.mp4` } }));
    const { output, cost } = await work(ctx);
    const key = outputKey(PIPELINE, "u1", jobId, "mp4", 1);
    expect(cost).toBe(0);
    expect(output).toMatchObject({
      type: "video",
      s3Key: key,
      width: 160,
      height: 120,
      videoCodec: "h264",
      audioCodec: "aac",
      contentType: "video/mp4",
      fps: 10,
    });
    expect(output.size).toBe(files.get("/clip.mp4")!.body.length);
    expect((await f.storage.getBuffer(key)).equals(files.get("/clip.mp4")!.body)).toBe(true);
    expect(await readdir(ctx.workDir)).toEqual(["asset.mp4"]);
    expect(progress.at(-1)).toBe(50);
  });

  it("takes neither an extension nor a content type from a server that says something else", async () => {
    const { ctx, jobId } = await f.context(f.node("u2", "asset", { asset: { type: "video", url: `${mediaOrigin}/clip-as-html` } }));
    const { output } = await work(ctx);
    expect(output.s3Key).toBe(outputKey(PIPELINE, "u2", jobId, "mp4", 1));
    expect(output.contentType).toBeUndefined();
  });

  it("fails the node with the reason: refused addresses, redirects into loopback, non-2xx, not media", async () => {
    const cases: Array<[string, RegExp]> = [
      [`http://localhost:${trapPort}/secret`, /^refusing to fetch http:\/\/localhost:\d+\/secret: localhost resolves to 127\.0\.0\.1, a loopback address$/],
      [`http://2130706433:${trapPort}/secret`, /^refusing to fetch http:\/\/127\.0\.0\.1:\d+\/secret: 127\.0\.0\.1 is a loopback address$/],
      ["http://169.254.169.254/latest/meta-data/", /169\.254\.169\.254 is a link-local address/],
      [`${mediaOrigin}/to-loopback`, /\(redirect 1 to http:\/\/127\.0\.0\.1:\d+\/secret\): 127\.0\.0\.1 is a loopback address$/],
      [`${mediaOrigin}/missing.mp4`, /^Asset URL: http:\/\/127\.0\.0\.2:\d+\/missing\.mp4 answered 404 Not Found$/],
      [`${mediaOrigin}/page.html`, /^Asset URL: not a readable media file/],
    ];
    for (const [url, reason] of cases) {
      const { ctx, jobId } = await f.context(f.node("u3", "asset", { asset: { type: "video", url } }));
      const error = await work(ctx).catch((e: unknown) => e);
      expect(error, url).toBeInstanceOf(WorkInputError);
      expect((error as Error).message, url).toMatch(reason);
      expect(await f.storage.stat(outputKey(PIPELINE, "u3", jobId, "mp4", 1))).toBeNull();
    }
    expect(trapped).toEqual([]);
  });

  it("refuses a url on a text or json asset", async () => {
    const { ctx } = await f.context(f.node("u4", "asset", { asset: { type: "text", url: `${mediaOrigin}/clip.mp4` } }));
    await expect(work(ctx)).rejects.toThrow(new WorkInputError("Asset: text assets take inline content or an upload, not a url"));
  });
});
