import { spawn } from "node:child_process";
import { open, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { splitSentences, type SpeechTiming, type TimedText } from "@vp/contracts";
import { concatList, fileArg, inputArgs, runFfmpeg } from "@vp/media";
import { WorkInputError } from "../errors";

/** espeak-ng voice names: "en-us", "de", "en-gb-scotland", with an optional variant "+f3". */
export const LOCAL_VOICE = /^[a-z]{2,3}(-[a-z0-9]{1,12}){0,3}(\+[a-z0-9]{1,12})?$/i;
export const LOCAL_DEFAULT_VOICE = "en-us";

export interface LocalVoiceOptions {
  text: string;
  /** espeak-ng voice (LOCAL_VOICE). */
  voice?: string;
  /** 1 = espeak-ng's 175 words per minute. */
  speed?: number;
  /** espeak-ng pitch 0-99, default 50. */
  pitch?: number;
  /** WAV file to write (a generated name in the job's work directory). */
  wavPath: string;
  signal?: AbortSignal;
  timeoutMs?: number;
}

/**
 * Speaks `text` with espeak-ng into a WAV file. The text goes in on stdin, never as an argument, so nothing in
 * a script can be read as an option.
 */
export function speakLocally(options: LocalVoiceOptions): Promise<void> {
  const voice = options.voice ?? LOCAL_DEFAULT_VOICE;
  if (!LOCAL_VOICE.test(voice)) {
    throw new WorkInputError(`voiceId "${voice}" is not an espeak-ng voice name for the local provider (e.g. en-us, en-gb, de, fr+f3)`);
  }
  const wpm = Math.round(Math.min(450, Math.max(80, 175 * (options.speed ?? 1))));
  const pitch = Math.round(Math.min(99, Math.max(0, options.pitch ?? 50)));
  const args = ["-v", voice, "-s", String(wpm), "-p", String(pitch), "-w", options.wavPath, "--stdin"];
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) return reject(options.signal.reason ?? new Error("aborted"));
    const child = spawn("espeak-ng", args, { stdio: ["pipe", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (c: string) => (stderr = (stderr + c).slice(-4000)));
    const onAbort = () => child.kill("SIGKILL");
    options.signal?.addEventListener("abort", onAbort, { once: true });
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 120_000);
    child.once("error", (error) => {
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
      reject(new Error(`espeak-ng could not start: ${error.message}`, { cause: error }));
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
      if (code === 0) return resolve();
      if (options.signal?.aborted) return reject(options.signal.reason ?? new Error("aborted"));
      const reason = stderr.trim().split("\n").pop() || `exit ${code ?? signal}`;
      if (/voice does not exist/i.test(stderr)) return reject(new WorkInputError(`espeak-ng has no voice "${voice}": ${reason}`));
      reject(new Error(`espeak-ng failed: ${reason}`));
    });
    child.stdin.on("error", () => undefined);
    child.stdin.end(options.text);
  });
}

/** espeak-ng processes a script's sentences are spoken with at once. */
const SENTENCE_CONCURRENCY = 2;

export interface SpokenScriptOptions extends Omit<LocalVoiceOptions, "wavPath"> {
  /** The job's work directory: the sentences' WAVs and the concat list are written there under generated names. */
  workDir: string;
  /** The joined WAV (a generated name in workDir). */
  wavPath: string;
}

/**
 * Speaks `text` sentence by sentence (splitSentences; two espeak-ng at a time, joined in order), measuring each
 * piece from its samples, then joins the pieces with ffmpeg's concat demuxer into `wavPath`. Each piece starts where
 * the previous one ended, so the timing is exact for the joined audio; a sentence's times are its voiced part.
 */
export async function speakSentences(options: SpokenScriptOptions): Promise<SpeechTiming> {
  const split = splitSentences(options.text);
  const pieces = split.length > 0 ? split : [options.text];
  const names = pieces.map((_, i) => `sentence-${String(i).padStart(4, "0")}.wav`);
  const spans = await mapInOrder(pieces, SENTENCE_CONCURRENCY, async (text, i) => {
    const wavPath = join(options.workDir, names[i]!);
    await speakLocally({ ...options, text, wavPath });
    return wavVoicedSpan(wavPath);
  });
  const list = join(options.workDir, "sentences.txt");
  await writeFile(list, concatList(names));
  await runFfmpeg(["-f", "concat", ...inputArgs(list, ["concat"]), "-c", "copy", "-f", "wav", fileArg(options.wavPath)], {
    signal: options.signal,
    workDir: options.workDir,
    timeoutMs: options.timeoutMs,
  });
  // Each piece is placed where the previous one ended; its sentence runs from its first to its last voiced sample,
  // so espeak-ng's pause after a sentence lies between two cues, not inside one.
  let at = 0;
  const sentences: TimedText[] = pieces.map((text, i) => {
    const span = spans[i]!;
    const sentence = { start: round3(at + span.from), end: round3(at + span.to), text };
    at += span.seconds;
    return sentence;
  });
  return { source: "measured", sentences };
}

/** Samples below this share of full scale count as silence when finding where speech starts and ends. */
const VOICED_LEVEL = 0.01;

/**
 * A 16-bit PCM WAV's length and the span from its first to its last sample above VOICED_LEVEL, in seconds; the
 * whole file when nothing is louder (or the format is not 16-bit PCM).
 */
export async function wavVoicedSpan(path: string): Promise<{ seconds: number; from: number; to: number }> {
  const seconds = await wavSeconds(path);
  const bytes = await readFile(path);
  const fmt = bytes.indexOf("fmt ", 12, "latin1");
  const data = bytes.indexOf("data", 12, "latin1");
  if (fmt < 0 || data < 0 || bytes.readUInt16LE(fmt + 8) !== 1 || bytes.readUInt16LE(fmt + 22) !== 16) return { seconds, from: 0, to: seconds };
  const channels = bytes.readUInt16LE(fmt + 10);
  const rate = bytes.readUInt32LE(fmt + 12);
  const start = data + 8;
  const end = Math.min(bytes.length, start + bytes.readUInt32LE(data + 4)) & ~1;
  const threshold = VOICED_LEVEL * 32768;
  let first = -1;
  let last = -1;
  for (let at = start; at + 1 < end; at += 2) {
    if (Math.abs(bytes.readInt16LE(at)) > threshold) {
      if (first < 0) first = at;
      last = at;
    }
  }
  if (first < 0) return { seconds, from: 0, to: seconds };
  const time = (at: number) => Math.floor((at - start) / 2 / channels) / rate;
  return { seconds, from: time(first), to: Math.min(seconds, time(last) + 1 / rate) };
}

/**
 * The length of a PCM WAV file from its header: data bytes / byte rate. Exact, without running ffprobe. A data
 * size larger than the file (a header written before the length was known) counts the bytes that are there.
 */
export async function wavSeconds(path: string): Promise<number> {
  const file = await open(path, "r");
  try {
    const { size } = await file.stat();
    const head = Buffer.alloc(Math.min(size, 64 * 1024));
    await file.read(head, 0, head.length, 0);
    if (head.toString("latin1", 0, 4) !== "RIFF" || head.toString("latin1", 8, 12) !== "WAVE") throw new Error(`${path} is not a WAV file`);
    let byteRate = 0;
    for (let at = 12; at + 8 <= head.length; ) {
      const id = head.toString("latin1", at, at + 4);
      const length = head.readUInt32LE(at + 4);
      if (id === "fmt " && at + 16 <= head.length) byteRate = head.readUInt32LE(at + 16);
      if (id === "data") {
        if (!byteRate) throw new Error(`${path}: no fmt chunk before the data`);
        return Math.min(length, size - (at + 8)) / byteRate;
      }
      at += 8 + length + (length % 2);
    }
    throw new Error(`${path}: no data chunk in the WAV header`);
  } finally {
    await file.close();
  }
}

/**
 * `fn` over `items` with at most `limit` running at once; results in the items' order. After a failure no new
 * item starts, and the call rejects once the running ones have ended (no child process outlives it).
 */
async function mapInOrder<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i]!, i);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  const settled = await Promise.allSettled(Array.from({ length: Math.min(limit, items.length) }, worker));
  const rejected = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
  if (rejected) throw rejected.reason;
  return results;
}

const round3 = (n: number) => Math.round(n * 1000) / 1000;
