import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { text } from "node:stream/consumers";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  assetKey,
  createS3Storage,
  createStorageFromEnv,
  MultipartUploadError,
  NotFoundError,
  outputKey,
  StorageAccessError,
  StorageKeyError,
  TooLargeError,
  type S3Storage,
} from "./index";
import { partSizeFor } from "./s3";
import { startTestS3, type TestS3 } from "./testing";

let s3: TestS3;
let storage: S3Storage;
let dir: string;

beforeAll(async () => {
  s3 = await startTestS3();
  storage = s3.storage("unit");
  dir = await mkdtemp(join(tmpdir(), "vp-s3-test-"));
});
afterAll(async () => {
  await s3?.close();
  await rm(dir, { recursive: true, force: true });
});

describe("multipart part size", () => {
  it("grows with the body so that S3's 10,000 parts hold it (a fixed 8 MiB part would cap an object near 78 GiB)", () => {
    const MiB = 1024 * 1024;
    expect(partSizeFor(8 * MiB)).toBe(8 * MiB);
    expect(partSizeFor(8 * MiB, 2 * 1024 ** 3)).toBe(8 * MiB);
    const huge = 200 * 1024 ** 3;
    const part = partSizeFor(8 * MiB, huge);
    expect(part % MiB).toBe(0);
    expect(Math.ceil(huge / part)).toBeLessThanOrEqual(9_000);
    expect(partSizeFor(8 * MiB, 5 * 1024 ** 4)).toBeLessThanOrEqual(5 * 1024 ** 3); // S3's largest part, for its largest object
  });
});

describe("S3 under a role without s3:ListBucket", () => {
  it("a HeadObject answered 403 (what S3 says for a missing key without ListBucket) is an error naming the permission, not a crash or a false 'missing'", async () => {
    // S3 answers HEAD of a missing key with a bare 403 when the caller may not list the bucket.
    const server = createServer((req, res) => {
      res.writeHead(403, { "x-amz-request-id": "TEST", "content-type": "application/xml" });
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const denied = createS3Storage({
        bucket: "media",
        endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        forcePathStyle: true,
        credentials: { accessKeyId: "test", secretAccessKey: "test" },
      });
      const key = outputKey("p1", "n1", "job-1", "mp3", 1);
      const error = await denied.exists(key).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StorageAccessError);
      expect((error as Error).message).toBe(
        `S3 answered 403 (access denied) when asked whether ${key} exists: grant the role s3:ListBucket on the bucket (S3 answers 403 instead of 404 for a missing key without it) and s3:GetObject on its objects; see docs/storage.md`,
      );
    } finally {
      server.close();
    }
  });
});

describe("S3 storage (against s3rver)", () => {
  it.each(["../../etc/passwd", "/etc/passwd", "a/../b", "a//b", "%2e%2e/x", "a b", ".hidden"])("rejects the key %j like the local backend", async (key) => {
    await expect(storage.put(key, Buffer.from("x"))).rejects.toBeInstanceOf(StorageKeyError);
    await expect(storage.putFile(key, join(dir, "nope"))).rejects.toBeInstanceOf(StorageKeyError);
    await expect(storage.download(key, join(dir, "out"))).rejects.toBeInstanceOf(StorageKeyError);
    await expect(storage.stat(key)).rejects.toBeInstanceOf(StorageKeyError);
    await expect(storage.delete(key)).rejects.toBeInstanceOf(StorageKeyError);
    await expect(storage.getBuffer(key)).rejects.toBeInstanceOf(StorageKeyError);
    expect(() => storage.createReadStream(key)).toThrow(StorageKeyError);
    await expect(storage.presignGet(key)).rejects.toBeInstanceOf(StorageKeyError);
  });

  it("round-trips put, stat, read, ranges, download and delete", async () => {
    const key = "pipelines/p1/nodes/n1/j1/output.txt";
    expect(await storage.stat(key)).toBeNull();
    expect(await storage.put(key, Buffer.from("0123456789"), { contentType: "text/plain" })).toEqual({ size: 10 });
    expect(await storage.stat(key)).toEqual({ size: 10 });
    expect(await storage.exists(key)).toBe(true);
    expect((await storage.getBuffer(key)).toString()).toBe("0123456789");
    expect(await text(storage.createReadStream(key))).toBe("0123456789");
    expect(await text(storage.createReadStream(key, { start: 2, end: 4 }))).toBe("234");
    expect(await text(storage.createReadStream(key, { start: 7 }))).toBe("789");
    expect(await text(storage.createReadStream(key, { end: 0 }))).toBe("0");
    expect(() => storage.createReadStream(key, { start: 5, end: 2 })).toThrow(RangeError);
    await expect(storage.getBuffer(key, { maxBytes: 5 })).rejects.toBeInstanceOf(TooLargeError);

    const local = join(dir, "copy.txt");
    expect(await storage.download(key, local)).toEqual({ size: 10 });
    expect(await readFile(local, "utf8")).toBe("0123456789");

    await storage.delete(key);
    await storage.delete(key);
    expect(await storage.exists(key)).toBe(false);
  });

  it("keeps objects under its prefix", async () => {
    await storage.put("a/b.txt", Buffer.from("prefixed"));
    const root = s3.storage();
    expect((await root.getBuffer("unit/a/b.txt")).toString()).toBe("prefixed");
    expect(await root.stat("a/b.txt")).toBeNull();
    expect(() => s3.storage("../x")).toThrow(StorageKeyError);
  });

  it("streams a large body as a multipart upload and reads it back", async () => {
    const big = s3.storage("multipart");
    async function* body() {
      for (let i = 0; i < 12; i++) yield Buffer.alloc(1024 * 1024, i);
    }
    expect(await big.put("big.bin", Readable.from(body()))).toEqual({ size: 12 * 1024 * 1024 });
    const local = join(dir, "big.bin");
    expect(await big.download("big.bin", local)).toEqual({ size: 12 * 1024 * 1024 });
    const back = await readFile(local);
    expect(back[0]).toBe(0);
    expect(back[12 * 1024 * 1024 - 1]).toBe(11);
    const tail = await text(big.createReadStream("big.bin", { start: 12 * 1024 * 1024 - 2 }));
    expect(Buffer.from(tail, "latin1")).toEqual(Buffer.from([11, 11]));
  });

  it("stores a local file with putFile", async () => {
    const local = join(dir, "in.txt");
    await writeFile(local, "hello");
    expect(await storage.putFile("x/in.txt", local, { contentType: "text/plain" })).toEqual({ size: 5 });
    expect((await storage.getBuffer("x/in.txt")).toString()).toBe("hello");
  });

  it("aborts an oversized body, keeping the previous object", async () => {
    const key = "up/big.bin";
    await storage.put(key, Buffer.from("previous"));
    async function* body() {
      for (let i = 0; i < 10; i++) yield Buffer.alloc(1000, i);
    }
    await expect(storage.put(key, Readable.from(body()), { maxBytes: 2500 })).rejects.toBeInstanceOf(TooLargeError);
    await expect(storage.put("up/other.bin", Buffer.alloc(3000), { maxBytes: 2500 })).rejects.toBeInstanceOf(TooLargeError);
    expect((await storage.getBuffer(key)).toString()).toBe("previous");
    expect(await storage.stat("up/other.bin")).toBeNull();
  });

  it("reports missing objects as NotFoundError and leaves no partial download", async () => {
    await expect(storage.getBuffer("no/such.txt")).rejects.toBeInstanceOf(NotFoundError);
    const before = await readdir(dir);
    await expect(storage.download("no/such.txt", join(dir, "x"))).rejects.toBeInstanceOf(NotFoundError);
    expect(await readdir(dir)).toEqual(before);
    await expect(text(storage.createReadStream("no/such.txt"))).rejects.toBeInstanceOf(NotFoundError);
  });

  it("presigns a GET a browser can use, with ranges", async () => {
    await storage.put("out/video.mp4", Buffer.from("not really a video"), { contentType: "video/mp4" });
    const url = await storage.presignGet("out/video.mp4", { expiresInSeconds: 60 });
    expect(url).toContain("X-Amz-Signature=");
    expect(url).toContain("X-Amz-Expires=60");
    const full = await fetch(url);
    expect(full.status).toBe(200);
    expect(await full.text()).toBe("not really a video");
    const ranged = await fetch(url, { headers: { range: "bytes=4-9" } });
    expect(ranged.status).toBe(206);
    expect(await ranged.text()).toBe("really");
  });

  it("createStorageFromEnv picks the backend from STORAGE", async () => {
    const fromEnv = createStorageFromEnv({ ...s3.env, S3_PREFIX: "unit" });
    expect(fromEnv.backend).toBe("s3");
    expect((await fromEnv.getBuffer("x/in.txt")).toString()).toBe("hello");
    expect(createStorageFromEnv({ STORAGE_ROOT: join(dir, "root") }).backend).toBe("local");
    expect(() => createStorageFromEnv({ STORAGE: "s3" })).toThrow(/S3_BUCKET/);
    expect(() => createStorageFromEnv({ STORAGE: "ftp" })).toThrow(/local" or "s3/);
  });

  it("lists and deletes everything under a pipeline's prefix, keeping the named keys and other pipelines", async () => {
    const gc = s3.storage("gc");
    const upload = assetKey("p1", "n1", "u1", "mp4");
    const first = outputKey("p1", "n2", "j1", "mp4", 1);
    const second = outputKey("p1", "n2", "j1", "mp4", 2);
    const other = outputKey("p10", "n1", "j9", "mp4", 1);
    await gc.put(upload, Buffer.alloc(5));
    await gc.put(first, Buffer.alloc(7));
    await gc.put(second, Buffer.alloc(11));
    await gc.put(other, Buffer.alloc(3));
    // Same keys outside this storage's S3 prefix are not its objects.
    await s3.storage().put(first, Buffer.alloc(1));

    const listed = [];
    for await (const object of gc.list("pipelines/p1/")) listed.push(object);
    expect(listed.sort((a, b) => a.key.localeCompare(b.key))).toEqual([
      { key: upload, size: 5 },
      { key: first, size: 7 },
      { key: second, size: 11 },
    ]);

    expect(await gc.deletePrefix("pipelines/p1/", { keep: new Set([second]) })).toEqual({ deleted: 2, bytes: 12, kept: [{ key: second, size: 11 }] });
    expect(await gc.exists(upload)).toBe(false);
    expect(await gc.exists(first)).toBe(false);
    expect(await gc.exists(second)).toBe(true);
    expect(await gc.exists(other)).toBe(true);
    expect(await s3.storage().exists(first)).toBe(true);
    expect(await gc.deletePrefix("pipelines/p1/")).toEqual({ deleted: 1, bytes: 11, kept: [] });
    expect(await gc.deletePrefix("pipelines/nothing/")).toEqual({ deleted: 0, bytes: 0, kept: [] });
    for (const bad of ["", "/", "pipelines", "../", "pipelines/../"]) {
      await expect(gc.deletePrefix(bad)).rejects.toBeInstanceOf(StorageKeyError);
    }
  });

  it("deletes a prefix of more than one listing page and one delete request", async () => {
    const many = s3.storage("many");
    const keys = Array.from({ length: 1205 }, (_, i) => outputKey("p1", `n${i}`, "j", "txt", 1));
    for (let i = 0; i < keys.length; i += 50) await Promise.all(keys.slice(i, i + 50).map((k) => many.put(k, Buffer.from("x"))));
    let count = 0;
    for await (const _ of many.list("pipelines/p1/")) count++;
    expect(count).toBe(1205);
    expect((await many.deletePrefix("pipelines/p1/")).deleted).toBe(1205);
    count = 0;
    for await (const _ of many.list("pipelines/p1/")) count++;
    expect(count).toBe(0);
  }, 120_000);
});

describe("multipart uploads a browser sends through presigned URLs (s3rver behind the strict front)", () => {
  const MiB = 1024 * 1024;
  let strict: TestS3;
  let direct: S3Storage;
  beforeAll(async () => {
    strict = await startTestS3({ strict: true });
    direct = strict.storage("direct");
  });
  afterAll(async () => strict?.close());

  /** PUTs a part as a browser does (plain fetch, no credentials); its status and ETag. */
  async function putPart(url: string, bytes: Buffer) {
    const answer = await fetch(url, { method: "PUT", body: new Uint8Array(bytes) });
    return { status: answer.status, etag: answer.headers.get("etag"), text: await answer.text() };
  }

  it("assembles parts PUT with plain fetch into the object, with the Content-Type it was started with", async () => {
    const uploads = direct.clientUploads;
    const key = assetKey("p1", "n1", "u1", "mp4");
    const bytes = Buffer.alloc(5 * MiB + 123);
    for (let i = 0; i < bytes.length; i += 4096) bytes[i] = i % 251;
    const { uploadId } = await uploads.start(key, { contentType: "video/mp4" });
    expect(await strict.pendingUploads()).toContain(uploadId);
    const first = bytes.subarray(0, 5 * MiB);
    const last = bytes.subarray(5 * MiB);
    const url1 = await uploads.presignPart(key, uploadId, { number: 1, size: first.length }, 60);
    const url2 = await uploads.presignPart(key, uploadId, { number: 2, size: last.length }, 60);
    // No checksum of an empty body in the URL: S3 would compare it with the browser's bytes and refuse them.
    expect(url1).not.toMatch(/x-amz-checksum|x-amz-sdk-checksum/i);
    expect(url1).toContain("X-Amz-SignedHeaders=content-length%3Bhost");
    const [one, two] = [await putPart(url1, first), await putPart(url2, last)];
    expect([one.status, two.status]).toEqual([200, 200]);
    await uploads.complete(key, uploadId, [
      { number: 1, etag: one.etag! },
      { number: 2, etag: two.etag! },
    ]);
    expect(await uploads.head(key)).toEqual({ size: bytes.length, contentType: "video/mp4" });
    expect((await direct.getBuffer(key)).equals(bytes)).toBe(true);
    expect(await strict.pendingUploads()).not.toContain(uploadId);
  });

  it("a part URL takes only its own part, of its own length, before it expires", async () => {
    const uploads = direct.clientUploads;
    const key = assetKey("p1", "n2", "u2", "mp4");
    const { uploadId } = await uploads.start(key, { contentType: "video/mp4" });
    const url = await uploads.presignPart(key, uploadId, { number: 1, size: 10 }, 60);
    expect((await putPart(url, Buffer.alloc(11))).text).toContain("SignatureDoesNotMatch");
    expect((await putPart(url.replace("partNumber=1", "partNumber=2"), Buffer.alloc(10))).text).toContain("SignatureDoesNotMatch");
    expect((await putPart(url.replace("/n2/", "/n3/"), Buffer.alloc(10))).text).toContain("SignatureDoesNotMatch");
    expect((await putPart(url, Buffer.alloc(10))).status).toBe(200);
    const short = await uploads.presignPart(key, uploadId, { number: 2, size: 10 }, 1);
    await new Promise((resolve) => setTimeout(resolve, 2100));
    const expired = await putPart(short, Buffer.alloc(10));
    expect(expired.status).toBe(403);
    expect(expired.text).toContain("Request has expired");
    await uploads.abort(key, uploadId);
  });

  it("refuses a completion S3 would refuse, with its reason, and aborting drops the parts", async () => {
    const uploads = direct.clientUploads;
    const key = assetKey("p1", "n4", "u4", "mp4");
    const { uploadId } = await uploads.start(key, { contentType: "video/mp4" });
    const small = await putPart(await uploads.presignPart(key, uploadId, { number: 1, size: 100 }, 60), Buffer.alloc(100, 1));
    const tail = await putPart(await uploads.presignPart(key, uploadId, { number: 2, size: 5 }, 60), Buffer.alloc(5, 2));
    const refusal = (parts: Array<{ number: number; etag: string }>) => uploads.complete(key, uploadId, parts).catch((e: unknown) => e);
    const wrongEtag = await refusal([{ number: 1, etag: '"0000"' }]);
    expect(wrongEtag).toBeInstanceOf(MultipartUploadError);
    expect(wrongEtag).toMatchObject({ code: "InvalidPart" });
    expect(
      await refusal([
        { number: 1, etag: small.etag! },
        { number: 2, etag: tail.etag! },
      ]),
    ).toMatchObject({ code: "EntityTooSmall" });
    expect(await uploads.head(key)).toBeNull();

    await uploads.abort(key, uploadId);
    expect(await strict.pendingUploads()).not.toContain(uploadId);
    await uploads.abort(key, uploadId); // gone already: not an error
    const late = await putPart(await uploads.presignPart(key, uploadId, { number: 3, size: 5 }, 60), Buffer.alloc(5));
    expect(late.status).toBe(404);
    expect(await refusal([{ number: 1, etag: small.etag! }])).toMatchObject({ code: "NoSuchUpload", message: expect.stringMatching(/does not exist/) });
  });

  it("partSize grows with the file like every other multipart upload of the backend", () => {
    expect(direct.clientUploads.partSize(10 * MiB)).toBe(8 * MiB);
    expect(Math.ceil((200 * 1024 ** 3) / direct.clientUploads.partSize(200 * 1024 ** 3))).toBeLessThanOrEqual(9_000);
  });
});
