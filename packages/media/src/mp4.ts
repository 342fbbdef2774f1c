import { open, type FileHandle } from "node:fs/promises";
import { MediaError } from "./errors";

/** What this package reads of an MP4/MOV file's header without starting a process. */
export interface Mp4Header {
  /** moov/mvhd: the movie's duration, what ffprobe reports as the format's duration. */
  durationSeconds: number;
  /** Size of the whole moov box (the sample tables): what a copy of these samples needs at the front of a file. */
  moovBytes: number;
  /** Each trak's handler ("vide", "soun", ...) and media timescale (ffprobe's stream time_base is 1/timescale). */
  tracks: Array<{ handler: string; timescale: number }>;
}

/**
 * Reads the movie duration and the tracks' kinds and timescales from an MP4/MOV file's `moov` box: box
 * headers and a few fields only, wherever the moov sits. An ffprobe costs ~0.1 s of process start-up,
 * more than the stream copy of a short clip, so the copy paths describe their output from this and from
 * what they copied. Throws MediaError when the file has no readable moov.
 */
export async function readMp4Header(path: string): Promise<Mp4Header> {
  const file = await open(path, "r");
  try {
    const { size } = await file.stat();
    const moov = await findBox(file, 0, size, "moov");
    if (!moov) throw new MediaError("not an MP4: no moov box");
    const mvhd = await findBox(file, moov.body, moov.end, "mvhd");
    if (!mvhd) throw new MediaError("not an MP4: no mvhd box");
    const { timescale, duration } = await timing(file, mvhd);
    const tracks: Mp4Header["tracks"] = [];
    for (const trak of await findBoxes(file, moov.body, moov.end, "trak")) {
      const mdia = await findBox(file, trak.body, trak.end, "mdia");
      const mdhd = mdia && (await findBox(file, mdia.body, mdia.end, "mdhd"));
      const hdlr = mdia && (await findBox(file, mdia.body, mdia.end, "hdlr"));
      if (!mdhd || !hdlr) throw new MediaError("not an MP4: a track has no mdhd or hdlr");
      // hdlr: version/flags(4) pre_defined(4) handler_type(4).
      const handler = (await readAt(file, hdlr.body + 8, 4)).toString("latin1");
      tracks.push({ handler, timescale: (await timing(file, mdhd)).timescale });
    }
    return { durationSeconds: duration / timescale, moovBytes: moov.end - moov.start, tracks };
  } finally {
    await file.close();
  }
}

/** mvhd and mdhd share their start: version 0 has 32-bit times, version 1 64-bit ones (after 4 bytes of version and flags). */
async function timing(file: FileHandle, box: Box): Promise<{ timescale: number; duration: number }> {
  const head = await readAt(file, box.body, Math.min(32, box.end - box.body));
  const v1 = head[0] === 1;
  if (head.length < (v1 ? 32 : 20)) throw new MediaError("not an MP4: a header box is cut short");
  const timescale = v1 ? head.readUInt32BE(20) : head.readUInt32BE(12);
  const duration = v1 ? Number(head.readBigUInt64BE(24)) : head.readUInt32BE(16);
  if (!(timescale > 0) || !Number.isFinite(duration)) throw new MediaError("not an MP4: a header box has no usable timescale");
  return { timescale, duration };
}

interface Box {
  /** Offset of the box's header. */
  start: number;
  /** Offset of the box's payload. */
  body: number;
  /** Offset just past the box. */
  end: number;
}

async function readAt(file: FileHandle, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  const { bytesRead } = await file.read(buffer, 0, length, position);
  if (bytesRead < length) throw new MediaError("not an MP4: a box runs past the end of the file");
  return buffer;
}

/** The first box of `type` among the boxes between `from` and `to` (siblings only, no descent). */
async function findBox(file: FileHandle, from: number, to: number, type: string): Promise<Box | undefined> {
  return (await findBoxes(file, from, to, type, 1))[0];
}

/** The boxes of `type` among the boxes between `from` and `to`, at most `limit`. */
async function findBoxes(file: FileHandle, from: number, to: number, type: string, limit = 64): Promise<Box[]> {
  const found: Box[] = [];
  let offset = from;
  // A well-formed file has a handful of top-level boxes; the bound stops a crafted chain of tiny ones.
  for (let i = 0; i < 10_000 && offset + 8 <= to; i++) {
    const header = await readAt(file, offset, Math.min(16, to - offset));
    let length = header.readUInt32BE(0);
    let headerLength = 8;
    if (length === 1) {
      if (header.length < 16) break;
      length = Number(header.readBigUInt64BE(8));
      headerLength = 16;
    } else if (length === 0) {
      length = to - offset;
    }
    if (length < headerLength || offset + length > to) throw new MediaError("not an MP4: a box runs past its parent");
    if (header.toString("latin1", 4, 8) === type) {
      found.push({ start: offset, body: offset + headerLength, end: offset + length });
      if (found.length >= limit) break;
    }
    offset += length;
  }
  return found;
}

/**
 * Bytes to reserve at the front of an MP4 for its moov (`-moov_size`) when its samples are copied from
 * `inputs`, plus `extraSamples` newly encoded ones: the inputs' own moov sizes with half again as margin (the
 * muxer chunks differently, 64-bit offsets past 4 GB) and 64 KiB. Written in place at the end, so the output
 * starts with its moov (playable while it downloads) without `+faststart`'s second pass over the whole file.
 * Undefined when an input is not an MP4/MOV (nothing to size from): then `+faststart`. A reservation that
 * still proves too small fails the run ("reserved_moov_size is too small"), and the caller repeats it with
 * `+faststart`.
 */
export async function moovReservation(inputs: readonly string[], extraSamples = 0): Promise<number | undefined> {
  let total = 0;
  for (const input of inputs) {
    try {
      total += (await readMp4Header(input)).moovBytes;
    } catch {
      return undefined;
    }
  }
  // Per new sample: a size (stsz), a share of a chunk offset and of a time-to-sample entry.
  return Math.ceil(total * 1.5 + extraSamples * 12 + 64 * 1024);
}

/** The ffmpeg arguments that put the moov at the front: a reservation when known, else a second pass. */
export function moovFrontArgs(reservedBytes: number | undefined): string[] {
  return reservedBytes === undefined ? ["-movflags", "+faststart"] : ["-moov_size", String(reservedBytes)];
}

/** Whether a run failed only because its moov reservation was too small (repeat it with `+faststart`). */
export function moovReservationTooSmall(error: unknown): boolean {
  return error instanceof Error && "stderrTail" in error && /reserved_moov_size is too small/.test(String((error as { stderrTail: unknown }).stderrTail));
}
