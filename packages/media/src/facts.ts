import { rm, stat } from "node:fs/promises";
import { basename } from "node:path";
import { MediaError } from "./errors";
import { readMp4Header } from "./mp4";
import { probe, type AudioStreamInfo, type ProbeOptions, type ProbeResult, type VideoStreamInfo } from "./probe";

/**
 * What a node's stored output records about its file, under the output's own field names (NodeOutput in
 * @vp/contracts): written from a probe when the file is made, read back by the nodes that use the file so
 * they need not probe it again. Every field is optional: outputs written before a field existed lack it.
 */
export interface MediaFacts {
  duration?: number;
  size?: number;
  width?: number;
  height?: number;
  videoCodec?: string;
  audioCodec?: string;
  formatName?: string;
  videoProfile?: string;
  pixFmt?: string;
  fps?: number;
  videoTimeBase?: string;
  sampleRate?: number;
  audioChannels?: number;
  audioChannelLayout?: string;
}

/** ffprobe's format_name for every MP4 (and MOV) file: the mov demuxer's list of names. */
export const MP4_FORMAT_NAME = "mov,mp4,m4a,3gp,3g2,mj2";

const round3 = (n: number) => Math.round(n * 1000) / 1000;

/** The facts of a probed file, as an output stores them (duration to the millisecond, unknown sizes left out). */
export function factsOfProbe(p: ProbeResult): MediaFacts {
  const facts: MediaFacts = { duration: round3(p.durationSeconds), size: p.sizeBytes, formatName: p.formatName };
  if (p.video) {
    facts.videoCodec = p.video.codec;
    if (p.video.width > 0) facts.width = p.video.width;
    if (p.video.height > 0) facts.height = p.video.height;
    if (p.video.profile) facts.videoProfile = p.video.profile;
    facts.pixFmt = p.video.pixFmt;
    facts.fps = p.video.fps;
    facts.videoTimeBase = p.video.timeBase;
  }
  if (p.audio) {
    facts.audioCodec = p.audio.codec;
    facts.sampleRate = p.audio.sampleRate;
    facts.audioChannels = p.audio.channels;
    if (p.audio.channelLayout) facts.audioChannelLayout = p.audio.channelLayout;
  }
  return facts;
}

const isNumber = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v) && v >= 0;
const isText = (v: unknown): v is string => typeof v === "string" && v.length > 0;

/**
 * A ProbeResult rebuilt from stored facts, or undefined when they are not complete enough to decide
 * anything from: an output written before these facts were stored, or one of a kind that records no
 * duration (images). A stream the facts name must come with everything the media operations read of it.
 */
export function probeOfFacts(facts: MediaFacts | undefined): ProbeResult | undefined {
  if (!facts || !isText(facts.formatName) || !isNumber(facts.duration) || !isNumber(facts.size) || facts.size === 0) return undefined;
  const result: ProbeResult = { durationSeconds: facts.duration, sizeBytes: facts.size, formatName: facts.formatName };
  if (facts.videoCodec !== undefined) {
    const { videoCodec, width, height, pixFmt, fps, videoTimeBase, videoProfile } = facts;
    if (!isText(videoCodec) || !isNumber(width) || !isNumber(height) || !isText(pixFmt) || !isNumber(fps) || typeof videoTimeBase !== "string")
      return undefined;
    result.video = { codec: videoCodec, ...(isText(videoProfile) ? { profile: videoProfile } : {}), width, height, fps, pixFmt, timeBase: videoTimeBase };
  }
  if (facts.audioCodec !== undefined) {
    const { audioCodec, sampleRate, audioChannels, audioChannelLayout } = facts;
    if (!isText(audioCodec) || !isNumber(sampleRate) || !isNumber(audioChannels)) return undefined;
    result.audio = { codec: audioCodec, sampleRate, channels: audioChannels, channelLayout: audioChannelLayout ?? "" };
  }
  return result.video || result.audio ? result : undefined;
}

/**
 * The probe of a local input file: rebuilt from the facts its producer stored when they are complete and
 * the file on disk has exactly the size they were recorded for (stored objects are never rewritten, their
 * keys are generated per job or per upload; the size check catches a file that is not the one described),
 * else ffprobe as before. Skipping the probe skips no safety check: every ffmpeg input still goes through
 * the file-protocol and container whitelists, and a damaged input still fails the run (runFfmpeg).
 */
export async function probeInput(path: string, facts: MediaFacts | undefined, options: ProbeOptions = {}): Promise<ProbeResult> {
  const known = probeOfFacts(facts);
  if (known) {
    let size: number;
    try {
      ({ size } = await stat(path));
    } catch (error) {
      throw new MediaError(`cannot read ${basename(path)}`, { cause: error });
    }
    if (size === known.sizeBytes) return known;
  }
  return probe(path, options);
}

/** Seconds an output may fall short of what its inputs promised before it counts as cut short. */
const shortfallAllowed = (expected: number) => 0.5 + expected * 0.01;

/**
 * The probe of an MP4 this package has just written by stream copy, without ffprobe: the streams as they
 * were copied (or encoded with known settings), duration and timescales from the file's own header, the
 * size from stat. It is also the short-output check of the copy paths: ffmpeg 5.1 exits 0 when an input
 * ends early (runFfmpeg fails such runs by their stderr), and an output that is still clearly shorter than
 * `expectedSeconds` fails here with MediaError and is removed. A header this cannot read is probed instead.
 */
export async function describeCopiedOutput(
  output: string,
  streams: { video?: VideoStreamInfo; audio?: AudioStreamInfo },
  expectedSeconds: number,
  options: ProbeOptions = {},
): Promise<ProbeResult> {
  let result: ProbeResult;
  try {
    const [header, { size }] = await Promise.all([readMp4Header(output), stat(output)]);
    const videoTrack = header.tracks.find((t) => t.handler === "vide");
    const audioTrack = header.tracks.find((t) => t.handler === "soun");
    if (Boolean(videoTrack) !== Boolean(streams.video) || Boolean(audioTrack) !== Boolean(streams.audio)) {
      throw new MediaError("the output's tracks are not the streams that were copied");
    }
    result = { durationSeconds: header.durationSeconds, sizeBytes: size, formatName: MP4_FORMAT_NAME };
    if (streams.video) result.video = { ...streams.video, timeBase: `1/${videoTrack!.timescale}` };
    if (streams.audio) result.audio = { ...streams.audio };
  } catch {
    // Not the MP4 this package writes (or not readable as one): ffprobe has the last word.
    result = await probe(output, options);
  }
  if (result.durationSeconds < expectedSeconds - shortfallAllowed(expectedSeconds)) {
    await rm(output, { force: true });
    throw new MediaError(
      `the output lasts ${result.durationSeconds.toFixed(2)} s but its inputs promised ${expectedSeconds.toFixed(2)} s: an input ends early (damaged or shorter than its header says)`,
    );
  }
  return result;
}
