/**
 * A minimal ZIP writer (deflate, no extra fields, fixed timestamps) for Lambda deployment packages, so the
 * build needs no `zip` binary and the same sources always give the same bytes.
 */
import { crc32, deflateRawSync, inflateRawSync } from "node:zlib";

export interface ZipEntry {
  /** Path inside the archive, `/`-separated. */
  name: string;
  data: Buffer;
  /** Unix permission bits; default 0o644. */
  mode?: number;
}

/** 1980-01-01 00:00 in DOS date/time: a constant, so builds are reproducible. */
const DOS_TIME = 0;
const DOS_DATE = (0 << 9) | (1 << 5) | 1;

export function zip(entries: readonly ZipEntry[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const entry of entries) {
    const name = Buffer.from(entry.name, "utf8");
    const compressed = deflateRawSync(entry.data, { level: 9 });
    const crc = crc32(entry.data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4); // version needed: 2.0 (deflate)
    local.writeUInt16LE(0x0800, 6); // UTF-8 names
    local.writeUInt16LE(8, 8); // deflate
    local.writeUInt16LE(DOS_TIME, 10);
    local.writeUInt16LE(DOS_DATE, 12);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(compressed.length, 18);
    local.writeUInt32LE(entry.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28);
    locals.push(local, name, compressed);

    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE((3 << 8) | 20, 4); // made by: Unix, 2.0
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x0800, 8);
    central.writeUInt16LE(8, 10);
    central.writeUInt16LE(DOS_TIME, 12);
    central.writeUInt16LE(DOS_DATE, 14);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(compressed.length, 20);
    central.writeUInt32LE(entry.data.length, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt16LE(0, 30); // extra
    central.writeUInt16LE(0, 32); // comment
    central.writeUInt16LE(0, 34); // disk
    central.writeUInt16LE(0, 36); // internal attributes
    central.writeUInt32LE(((0o100000 | (entry.mode ?? 0o644)) << 16) >>> 0, 38); // regular file + permissions
    central.writeUInt32LE(offset, 42);
    centrals.push(central, name);
    offset += local.length + name.length + compressed.length;
  }
  const centralSize = centrals.reduce((n, b) => n + b.length, 0);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(centralSize, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, ...centrals, end]);
}

/** One entry of an archive's central directory. */
export interface ZipListing {
  name: string;
  /** Uncompressed size in bytes. */
  size: number;
  compressedSize: number;
  /** Unix permission bits when the archive was made on Unix (what `zip` and zip() write), else undefined. */
  mode: number | undefined;
  directory: boolean;
  /** Offset of the entry's local header. */
  localHeader: number;
  crc: number;
}

/** Lists an archive's entries from its central directory (any zip without ZIP64, also one the `zip` CLI wrote). */
export function listZip(archive: Buffer): ZipListing[] {
  const endAt = archive.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (endAt < 0) throw new Error("not a zip archive");
  let at = archive.readUInt32LE(endAt + 16);
  const count = archive.readUInt16LE(endAt + 10);
  const entries: ZipListing[] = [];
  for (let i = 0; i < count; i++) {
    if (archive.readUInt32LE(at) !== 0x02014b50) throw new Error("bad central directory");
    const nameLength = archive.readUInt16LE(at + 28);
    const name = archive.subarray(at + 46, at + 46 + nameLength).toString("utf8");
    const madeOnUnix = archive.readUInt16LE(at + 4) >> 8 === 3;
    const attributes = archive.readUInt32LE(at + 38);
    entries.push({
      name,
      size: archive.readUInt32LE(at + 24),
      compressedSize: archive.readUInt32LE(at + 20),
      mode: madeOnUnix ? (attributes >>> 16) & 0o7777 : undefined,
      directory: name.endsWith("/"),
      localHeader: archive.readUInt32LE(at + 42),
      crc: archive.readUInt32LE(at + 16),
    });
    at += 46 + nameLength + archive.readUInt16LE(at + 30) + archive.readUInt16LE(at + 32);
  }
  return entries;
}

/** Reads back what zip() wrote (for checks): name -> data. */
export function unzip(archive: Buffer): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  for (const entry of listZip(archive)) {
    const local = entry.localHeader;
    const dataAt = local + 30 + archive.readUInt16LE(local + 26) + archive.readUInt16LE(local + 28);
    const data = inflateRawSync(archive.subarray(dataAt, dataAt + entry.compressedSize));
    if (crc32(data) !== entry.crc) throw new Error(`CRC mismatch in ${entry.name}`);
    files.set(entry.name, data);
  }
  return files;
}
