import { mkdtemp, mkdir, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { text } from "node:stream/consumers";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { assetKey, createLocalStorage, NotFoundError, outputKey, StorageKeyError, TooLargeError, validateKey, type Storage } from "./index";

let dir: string;
let root: string;
let storage: Storage;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "vp-storage-"));
  root = join(dir, "root");
  storage = createLocalStorage({ root });
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("key rules", () => {
  const traversal = [
    "../../etc/passwd",
    "/etc/passwd",
    "a/../../b",
    "a/./b",
    "a\\b",
    "..\\..\\x",
    "%2e%2e/x",
    "a//b",
    "a/",
    "",
    ".hidden",
    "C:/x",
    "file:x",
    "a b",
    "x".repeat(513),
  ];

  it.each(traversal)("rejects %j in every operation", async (key) => {
    expect(() => validateKey(key)).toThrow(StorageKeyError);
    await expect(storage.put(key, Buffer.from("x"))).rejects.toBeInstanceOf(StorageKeyError);
    await expect(storage.putFile(key, join(dir, "nope"))).rejects.toBeInstanceOf(StorageKeyError);
    await expect(storage.download(key, join(dir, "out"))).rejects.toBeInstanceOf(StorageKeyError);
    await expect(storage.stat(key)).rejects.toBeInstanceOf(StorageKeyError);
    await expect(storage.exists(key)).rejects.toBeInstanceOf(StorageKeyError);
    await expect(storage.delete(key)).rejects.toBeInstanceOf(StorageKeyError);
    await expect(storage.getBuffer(key)).rejects.toBeInstanceOf(StorageKeyError);
    expect(() => storage.createReadStream(key)).toThrow(StorageKeyError);
  });

  it("accepts ordinary keys", () => {
    expect(validateKey("pipelines/p1/nodes/n-1/job_1/output.mp4")).toBe("pipelines/p1/nodes/n-1/job_1/output.mp4");
    expect(validateKey("x".repeat(512))).toHaveLength(512);
  });

  it("builds system keys and validates their parts", () => {
    expect(outputKey("p1", "n1", "j1", "mp4")).toBe("pipelines/p1/nodes/n1/j1/output.mp4");
    // Per attempt: a superseded attempt that finishes late writes beside the committed result.
    expect(outputKey("p1", "n1", "j1", "mp4", 2)).toBe("pipelines/p1/nodes/n1/j1-a2/output.mp4");
    expect(() => outputKey("p1", "n1", "j1", "mp4", -1)).toThrow(StorageKeyError);
    expect(() => outputKey("p1", "n1", "j1", "mp4", 1.5)).toThrow(StorageKeyError);
    expect(assetKey("p1", "n1", "u1", "png")).toBe("pipelines/p1/nodes/n1/asset/u1.png");
    expect(() => outputKey("..", "n1", "j1", "mp4")).toThrow(StorageKeyError);
    expect(() => outputKey("p1", "a/b", "j1", "mp4")).toThrow(StorageKeyError);
    expect(() => outputKey("p1", "n1", "j1", "mp4/../x")).toThrow(StorageKeyError);
    expect(() => assetKey("p1", "n1", "u1", "")).toThrow(StorageKeyError);
  });

  it("refuses a symlinked directory that points outside the root", async () => {
    const outside = join(dir, "outside");
    await mkdir(outside);
    await writeFile(join(outside, "secret.txt"), "secret");
    await mkdir(root, { recursive: true });
    await symlink(outside, join(root, "escape"));

    await expect(storage.getBuffer("escape/secret.txt")).rejects.toBeInstanceOf(StorageKeyError);
    await expect(storage.stat("escape/secret.txt")).rejects.toBeInstanceOf(StorageKeyError);
    await expect(storage.download("escape/secret.txt", join(dir, "stolen"))).rejects.toBeInstanceOf(StorageKeyError);
    await expect(text(storage.createReadStream("escape/secret.txt"))).rejects.toBeInstanceOf(StorageKeyError);
    await expect(storage.put("escape/new.txt", Buffer.from("x"))).rejects.toBeInstanceOf(StorageKeyError);
    await expect(storage.put("escape/deeper/new.txt", Buffer.from("x"))).rejects.toBeInstanceOf(StorageKeyError);
    await expect(storage.delete("escape/secret.txt")).rejects.toBeInstanceOf(StorageKeyError);
    expect(await readdir(outside)).toEqual(["secret.txt"]);
  });

  it("refuses a symlink planted at a key", async () => {
    await writeFile(join(dir, "passwd"), "root:x:0:0");
    await mkdir(join(root, "a"), { recursive: true });
    await symlink(join(dir, "passwd"), join(root, "a", "link"));
    await expect(storage.getBuffer("a/link")).rejects.toBeInstanceOf(StorageKeyError);
    await expect(storage.stat("a/link")).rejects.toBeInstanceOf(StorageKeyError);
    await expect(text(storage.createReadStream("a/link"))).rejects.toBeInstanceOf(StorageKeyError);
  });
});

describe("objects", () => {
  it("round-trips put, stat, read, ranges, download and delete", async () => {
    const key = "pipelines/p1/nodes/n1/j1/output.txt";
    expect(await storage.stat(key)).toBeNull();
    expect(await storage.exists(key)).toBe(false);

    expect(await storage.put(key, Buffer.from("0123456789"))).toEqual({ size: 10 });
    expect(await storage.stat(key)).toEqual({ size: 10 });
    expect(await storage.exists(key)).toBe(true);
    expect((await storage.getBuffer(key)).toString()).toBe("0123456789");
    expect(await text(storage.createReadStream(key))).toBe("0123456789");
    expect(await text(storage.createReadStream(key, { start: 2, end: 4 }))).toBe("234");
    expect(await text(storage.createReadStream(key, { start: 7 }))).toBe("789");
    expect(await text(storage.createReadStream(key, { end: 0 }))).toBe("0");
    expect(() => storage.createReadStream(key, { start: 5, end: 2 })).toThrow(RangeError);

    const local = join(dir, "copy.txt");
    expect(await storage.download(key, local)).toEqual({ size: 10 });
    expect(await readFile(local, "utf8")).toBe("0123456789");

    await storage.delete(key);
    await storage.delete(key);
    expect(await storage.exists(key)).toBe(false);
  });

  it("streams a Readable body and replaces an object atomically", async () => {
    const key = "a/b.bin";
    await storage.put(key, Buffer.from("old"));
    const body = Readable.from([Buffer.alloc(100_000, 1), Buffer.alloc(50_000, 2)]);
    expect(await storage.put(key, body, { contentType: "application/octet-stream" })).toEqual({ size: 150_000 });
    const buf = await storage.getBuffer(key);
    expect(buf.length).toBe(150_000);
    expect(buf[149_999]).toBe(2);
    expect(await readdir(join(root, "a"))).toEqual(["b.bin"]);
  });

  it("stores a local file with putFile", async () => {
    const local = join(dir, "in.txt");
    await writeFile(local, "hello");
    expect(await storage.putFile("x/in.txt", local)).toEqual({ size: 5 });
    expect((await storage.getBuffer("x/in.txt")).toString()).toBe("hello");
  });

  it("aborts an oversized body cleanly, keeping the previous object", async () => {
    const key = "up/big.bin";
    await storage.put(key, Buffer.from("previous"));
    async function* body() {
      for (let i = 0; i < 10; i++) yield Buffer.alloc(1000, i);
    }
    await expect(storage.put(key, Readable.from(body()), { maxBytes: 2500 })).rejects.toBeInstanceOf(TooLargeError);
    await expect(storage.put("up/other.bin", Buffer.alloc(3000), { maxBytes: 2500 })).rejects.toBeInstanceOf(TooLargeError);
    expect(await readdir(join(root, "up"))).toEqual(["big.bin"]);
    expect((await storage.getBuffer(key)).toString()).toBe("previous");
    expect(await storage.put("up/exact.bin", Readable.from([Buffer.alloc(2500)]), { maxBytes: 2500 })).toEqual({ size: 2500 });
    await expect(storage.getBuffer("up/exact.bin", { maxBytes: 10 })).rejects.toBeInstanceOf(TooLargeError);
  });

  it("reports missing objects as NotFoundError", async () => {
    await expect(storage.getBuffer("no/such.txt")).rejects.toBeInstanceOf(NotFoundError);
    await expect(storage.download("no/such.txt", join(dir, "x"))).rejects.toBeInstanceOf(NotFoundError);
    await expect(text(storage.createReadStream("no/such.txt"))).rejects.toBeInstanceOf(NotFoundError);
    await storage.put("dir/file.txt", Buffer.from("x"));
    expect(await storage.stat("dir")).toBeNull();
    await expect(storage.getBuffer("dir")).rejects.toBeInstanceOf(NotFoundError);
    await expect(storage.getBuffer("dir/file.txt/deeper")).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe("prefixes", () => {
  it("lists and deletes everything under a pipeline's prefix, keeping the named keys and other pipelines", async () => {
    const upload = assetKey("p1", "n1", "u1", "mp4");
    const first = outputKey("p1", "n2", "j1", "mp4", 1);
    const second = outputKey("p1", "n2", "j1", "mp4", 2);
    const other = outputKey("p10", "n1", "j9", "mp4", 1);
    await storage.put(upload, Buffer.alloc(5));
    await storage.put(first, Buffer.alloc(7));
    await storage.put(second, Buffer.alloc(11));
    await storage.put(other, Buffer.alloc(3));
    // A put in flight leaves a temp file, which no listing shows and no deletion removes.
    await writeFile(join(root, "pipelines/p1/nodes/n2/.output.mp4.x.tmp"), "partial");

    const listed = [];
    for await (const object of storage.list("pipelines/p1/")) listed.push(object);
    expect(listed.sort((a, b) => a.key.localeCompare(b.key))).toEqual([
      { key: upload, size: 5 },
      { key: first, size: 7 },
      { key: second, size: 11 },
    ]);

    const result = await storage.deletePrefix("pipelines/p1/", { keep: new Set([second]) });
    expect(result).toEqual({ deleted: 2, bytes: 12, kept: [{ key: second, size: 11 }] });
    expect(await storage.exists(upload)).toBe(false);
    expect(await storage.exists(first)).toBe(false);
    expect(await storage.exists(second)).toBe(true);
    expect(await storage.exists(other)).toBe(true);
    // Emptied directories go; those holding a kept object or a put in flight stay.
    expect(await readdir(join(root, "pipelines/p1/nodes"))).toEqual(["n2"]);
    expect((await readdir(join(root, "pipelines/p1/nodes/n2"))).sort()).toEqual([".output.mp4.x.tmp", "j1-a2"]);

    expect(await storage.deletePrefix("pipelines/p1/")).toEqual({ deleted: 1, bytes: 11, kept: [] });
    expect(await storage.deletePrefix("pipelines/nothing/")).toEqual({ deleted: 0, bytes: 0, kept: [] });
    expect(await storage.exists(other)).toBe(true);
  });

  it("refuses prefixes that are not a key's directories, and follows no symlink out of the root", async () => {
    for (const bad of ["", "/", "pipelines", "../", "pipelines/../", "/etc/", "a//"]) {
      await expect(storage.deletePrefix(bad)).rejects.toBeInstanceOf(StorageKeyError);
      await expect(
        (async () => {
          for await (const _ of storage.list(bad));
        })(),
      ).rejects.toBeInstanceOf(StorageKeyError);
    }
    const outside = join(dir, "outside");
    await mkdir(join(outside, "deep"), { recursive: true });
    await writeFile(join(outside, "deep", "secret.txt"), "secret");
    await mkdir(join(root, "pipelines", "p2"), { recursive: true });
    await symlink(outside, join(root, "pipelines", "p2", "nodes"));
    await symlink(outside, join(root, "escape"));
    expect(await storage.deletePrefix("pipelines/p2/")).toEqual({ deleted: 0, bytes: 0, kept: [] });
    await expect(storage.deletePrefix("escape/")).rejects.toBeInstanceOf(StorageKeyError);
    expect(await readFile(join(outside, "deep", "secret.txt"), "utf8")).toBe("secret");
  });
});
