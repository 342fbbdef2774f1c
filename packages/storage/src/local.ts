import { randomUUID } from "node:crypto";
import { constants, createWriteStream } from "node:fs";
import { copyFile, lstat, mkdir, open, readdir, realpath, rename, rm, rmdir, stat as fsStat, unlink, writeFile, type FileHandle } from "node:fs/promises";
import { basename, dirname, join, resolve, sep } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { NotFoundError, StorageKeyError, TooLargeError } from "./errors";
import { KEY_SEGMENT, validateKey, validatePrefix } from "./keys";
import type { ByteRange, DeletePrefixOptions, DeletePrefixResult, ListedObject, ObjectStat, PutOptions, Storage } from "./types";

export interface LocalStorageOptions {
  /** Directory that holds every object; created on first use. */
  root: string;
}

function errCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

/** Counts bytes through a pipeline and fails it with TooLargeError past the limit. */
function byteCounter(maxBytes: number | undefined, counted: { size: number }): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      counted.size += chunk.length;
      if (maxBytes !== undefined && counted.size > maxBytes) callback(new TooLargeError(maxBytes));
      else callback(null, chunk);
    },
  });
}

function checkRange(range: ByteRange | undefined): { start?: number; end?: number } {
  if (!range) return {};
  const { start, end } = range;
  for (const [name, v] of [
    ["start", start],
    ["end", end],
  ] as const) {
    if (v !== undefined && (!Number.isSafeInteger(v) || v < 0)) throw new RangeError(`range ${name} must be a non-negative integer`);
  }
  if (start !== undefined && end !== undefined && end < start) throw new RangeError("range end is before its start");
  return { start, end };
}

/** The storage root: its resolved path, and its real path once it exists (created on first use). */
interface LocalRoot {
  root: string;
  realRoot(): Promise<string>;
}

function localRoot(rootOption: string): LocalRoot {
  const root = resolve(rootOption);
  let realRootPromise: Promise<string> | undefined;
  const realRoot = () =>
    (realRootPromise ??= mkdir(root, { recursive: true })
      .then(() => realpath(root))
      .catch((error: unknown) => {
        realRootPromise = undefined;
        throw error;
      }));
  return { root, realRoot };
}

/**
 * Objects as files under `root`, one file per key. Containment is checked on every operation twice: the
 * key rules plus the resolved path staying under root (no `..`), and the real path of the object's
 * directory staying under the real root (no symlinked directory leading out). Objects themselves are
 * opened with O_NOFOLLOW, so a symlink planted at a key is refused rather than followed.
 */
export function createLocalStorage(options: LocalStorageOptions): Storage {
  const r = localRoot(options.root);
  const storage: Storage = {
    backend: "local",
    put: async (key, body, putOptions = {}) => putObject(r, key, body, putOptions),
    putFile: async (key, localPath) => putFileObject(r, key, localPath),
    download: async (key, localPath) => downloadObject(r, key, localPath),
    createReadStream: (key, range) => readStream(r, key, range),
    getBuffer: async (key, getOptions = {}) => getBuffer(r, key, getOptions),
    stat: async (key) => statObject(r, key),
    delete: async (key) => deleteObject(r, key),
    exists: async (key) => (await storage.stat(key)) !== null,
    list: (prefix) => listObjects(r, prefix),
    deletePrefix: async (prefix, deleteOptions = {}) => deleteUnder(r, prefix, deleteOptions),
  };
  return storage;
}

function pathOf({ root }: LocalRoot, key: string): string {
  validateKey(key);
  const abs = resolve(root, key);
  if (!abs.startsWith(root + sep)) throw new StorageKeyError(`storage key resolves outside the storage root: ${JSON.stringify(key)}`);
  return abs;
}

async function assertInside(r: LocalRoot, real: string, key: string): Promise<void> {
  const base = await r.realRoot();
  if (real !== base && !real.startsWith(base + sep)) {
    throw new StorageKeyError(`storage key leads outside the storage root through a symlink: ${JSON.stringify(key)}`);
  }
}

/** The real directory of an existing object's parent, checked; null when it does not exist. */
async function existingParent(r: LocalRoot, abs: string, key: string): Promise<string | null> {
  await r.realRoot();
  let real: string;
  try {
    real = await realpath(dirname(abs));
  } catch (error) {
    if (errCode(error) === "ENOENT" || errCode(error) === "ENOTDIR") return null;
    throw error;
  }
  await assertInside(r, real, key);
  return real;
}

/** Creates the object's directory without ever creating anything through a symlink that leads out. */
async function ensureParent(r: LocalRoot, abs: string, key: string): Promise<void> {
  await r.realRoot();
  const parent = dirname(abs);
  // The deepest ancestor that exists must already be inside; directories created below it then are too.
  let ancestor = parent;
  for (;;) {
    try {
      await assertInside(r, await realpath(ancestor), key);
      break;
    } catch (error) {
      if (errCode(error) !== "ENOENT") throw error;
      ancestor = dirname(ancestor);
    }
  }
  await mkdir(parent, { recursive: true });
  await assertInside(r, await realpath(parent), key);
}

async function openForRead(r: LocalRoot, abs: string, key: string): Promise<FileHandle> {
  if ((await existingParent(r, abs, key)) === null) throw new NotFoundError(key);
  let fh: FileHandle;
  try {
    fh = await open(abs, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (error) {
    const code = errCode(error);
    if (code === "ENOENT" || code === "ENOTDIR") throw new NotFoundError(key, { cause: error });
    if (code === "ELOOP") throw new StorageKeyError(`storage key is a symlink: ${JSON.stringify(key)}`, { cause: error });
    throw error;
  }
  const st = await fh.stat();
  if (!st.isFile()) {
    await fh.close();
    throw new NotFoundError(key);
  }
  return fh;
}

/**
 * The prefix's directory, checked like a key's; null when it does not exist. Below it, walk() follows no
 * symlink (a Dirent of a link is neither a file nor a directory to it).
 */
async function prefixDir(r: LocalRoot, prefix: string): Promise<string | null> {
  validatePrefix(prefix);
  const abs = pathOf(r, prefix.slice(0, -1));
  let real: string;
  try {
    real = await realpath(abs);
  } catch (error) {
    if (errCode(error) === "ENOENT" || errCode(error) === "ENOTDIR") return null;
    throw error;
  }
  await assertInside(r, real, prefix);
  return (await lstat(real)).isDirectory() ? real : null;
}

/** Objects below `dir` (keyed from `keyPrefix`), depth first; directories are reported after their contents. */
async function* walk(dir: string, keyPrefix: string): AsyncGenerator<{ object?: ListedObject; path: string; directory?: true }> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    if (errCode(error) === "ENOENT") return;
    throw error;
  }
  for (const entry of entries) {
    // Temp files of puts in flight (and anything else no key can name) are neither listed nor deleted.
    if (!KEY_SEGMENT.test(entry.name)) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      yield* walk(path, `${keyPrefix}${entry.name}/`);
      yield { path, directory: true };
    } else if (entry.isFile()) {
      const st = await lstat(path).catch(() => null);
      if (st?.isFile()) yield { path, object: { key: `${keyPrefix}${entry.name}`, size: st.size } };
    }
  }
}

const tempPathFor = (abs: string) => join(dirname(abs), `.${basename(abs)}.${randomUUID()}.tmp`);

async function commit(tmp: string, abs: string): Promise<ObjectStat> {
  const { size } = await fsStat(tmp);
  await rename(tmp, abs);
  return { size };
}

/** Written to a temp file beside the object and renamed over it, so readers never see part of a body. */
async function putObject(r: LocalRoot, key: string, body: Readable | Buffer | Uint8Array, putOptions: PutOptions): Promise<ObjectStat> {
  const abs = pathOf(r, key);
  const { maxBytes } = putOptions;
  if (body instanceof Uint8Array && maxBytes !== undefined && body.byteLength > maxBytes) throw new TooLargeError(maxBytes);
  await ensureParent(r, abs, key);
  const tmp = tempPathFor(abs);
  try {
    if (body instanceof Uint8Array) {
      await writeFile(tmp, body, { flag: "wx" });
    } else {
      await pipeline(body, byteCounter(maxBytes, { size: 0 }), createWriteStream(tmp, { flags: "wx" }));
    }
    return await commit(tmp, abs);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
}

async function putFileObject(r: LocalRoot, key: string, localPath: string): Promise<ObjectStat> {
  const abs = pathOf(r, key);
  await ensureParent(r, abs, key);
  const tmp = tempPathFor(abs);
  try {
    await copyFile(localPath, tmp, constants.COPYFILE_EXCL);
    return await commit(tmp, abs);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
}

async function downloadObject(r: LocalRoot, key: string, localPath: string): Promise<ObjectStat> {
  const abs = pathOf(r, key);
  const fh = await openForRead(r, abs, key);
  const counted = { size: 0 };
  try {
    await pipeline(fh.createReadStream({ autoClose: false }), byteCounter(undefined, counted), createWriteStream(localPath));
  } catch (error) {
    await rm(localPath, { force: true });
    throw error;
  } finally {
    await fh.close();
  }
  return { size: counted.size };
}

/** Key and range errors throw at once; the file is opened when the stream is first read. */
function readStream(r: LocalRoot, key: string, range: ByteRange | undefined): Readable {
  const abs = pathOf(r, key);
  const { start, end } = checkRange(range);
  async function* chunks() {
    const fh = await openForRead(r, abs, key);
    try {
      yield* fh.createReadStream({ start, end, autoClose: false });
    } finally {
      await fh.close();
    }
  }
  return Readable.from(chunks(), { objectMode: false });
}

async function getBuffer(r: LocalRoot, key: string, { maxBytes }: { maxBytes?: number }): Promise<Buffer> {
  const abs = pathOf(r, key);
  const fh = await openForRead(r, abs, key);
  try {
    if (maxBytes !== undefined && (await fh.stat()).size > maxBytes) throw new TooLargeError(maxBytes);
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}

async function statObject(r: LocalRoot, key: string): Promise<ObjectStat | null> {
  const abs = pathOf(r, key);
  if ((await existingParent(r, abs, key)) === null) return null;
  try {
    const st = await lstat(abs);
    if (st.isSymbolicLink()) throw new StorageKeyError(`storage key is a symlink: ${JSON.stringify(key)}`);
    return st.isFile() ? { size: st.size } : null;
  } catch (error) {
    if (errCode(error) === "ENOENT") return null;
    throw error;
  }
}

async function deleteObject(r: LocalRoot, key: string): Promise<void> {
  const abs = pathOf(r, key);
  if ((await existingParent(r, abs, key)) === null) return;
  try {
    await unlink(abs);
  } catch (error) {
    if (errCode(error) !== "ENOENT") throw error;
  }
}

async function* listObjects(r: LocalRoot, prefix: string): AsyncGenerator<ListedObject> {
  const dir = await prefixDir(r, prefix);
  if (dir === null) return;
  for await (const item of walk(dir, prefix)) if (item.object) yield item.object;
}

async function deleteUnder(r: LocalRoot, prefix: string, deleteOptions: DeletePrefixOptions): Promise<DeletePrefixResult> {
  const keep = deleteOptions.keep ?? new Set<string>();
  const result = { deleted: 0, bytes: 0, kept: [] as ListedObject[] };
  const dir = await prefixDir(r, prefix);
  if (dir === null) return result;
  for await (const item of walk(dir, prefix)) {
    if (item.object) {
      if (keep.has(item.object.key)) {
        result.kept.push(item.object);
        continue;
      }
      try {
        await unlink(item.path);
        result.deleted += 1;
        result.bytes += item.object.size;
      } catch (error) {
        if (errCode(error) !== "ENOENT") throw error;
      }
    } else {
      // A directory still holding a kept object or a put in flight stays.
      await rmdir(item.path).catch(() => undefined);
    }
  }
  await rmdir(dir).catch(() => undefined);
  return result;
}
