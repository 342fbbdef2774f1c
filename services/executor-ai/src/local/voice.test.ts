/** The local voice's sentence timing, with the machine's real espeak-ng and ffmpeg. */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { probe } from "@vp/media";
import { WorkInputError } from "../errors";
import { speakLocally, speakSentences, wavSeconds, wavVoicedSpan } from "./voice";

let root: string;
let n = 0;
const workDir = async () => {
  const d = join(root, `w${++n}`);
  await mkdir(d);
  return d;
};

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "vp-voice-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("wavSeconds", () => {
  it("reads the length from the header exactly as ffprobe computes it", async () => {
    const dir = await workDir();
    const wav = join(dir, "a.wav");
    await speakLocally({ text: "Counting the bytes of speech.", wavPath: wav });
    expect(await wavSeconds(wav)).toBeCloseTo((await probe(wav)).durationSeconds, 5);
  });

  it("counts only the bytes that are there when the header claims more, and refuses what is not a WAV", async () => {
    const dir = await workDir();
    const wav = join(dir, "a.wav");
    await speakLocally({ text: "Short.", wavPath: wav });
    const bytes = await readFile(wav);
    const real = await wavSeconds(wav);
    // A streamed header: the data size is a placeholder larger than the file.
    bytes.writeUInt32LE(0x7ffff000, 40);
    await writeFile(join(dir, "streamed.wav"), bytes);
    expect(await wavSeconds(join(dir, "streamed.wav"))).toBeCloseTo(real, 9);
    await writeFile(join(dir, "not.wav"), "ID3 not a wav at all");
    await expect(wavSeconds(join(dir, "not.wav"))).rejects.toThrow(/is not a WAV file/);
  });
});

describe("speakSentences", () => {
  const script = "Loops repeat a block of code while a condition holds. Stop! Then we write three of them, one after another, slowly.";

  it("speaks each sentence on its own, measures it, and joins them in order: contiguous times that add up to the joined audio", async () => {
    const dir = await workDir();
    const wavPath = join(dir, "voice.wav");
    const timing = await speakSentences({ text: script, workDir: dir, wavPath });
    expect(timing.source).toBe("measured");
    expect(timing.sentences.map((s) => s.text)).toEqual([
      "Loops repeat a block of code while a condition holds.",
      "Stop!",
      "Then we write three of them, one after another, slowly.",
    ]);
    // Sentences are their voiced parts: the first starts at the voice's onset, espeak-ng's pause lies between two.
    expect(timing.sentences[0]!.start).toBeLessThan(0.1);
    for (let i = 1; i < timing.sentences.length; i++) expect(timing.sentences[i]!.start).toBeGreaterThan(timing.sentences[i - 1]!.end + 0.1);
    const duration = (await probe(wavPath)).durationSeconds;
    expect(timing.sentences.at(-1)!.end).toBeLessThanOrEqual(duration);
    expect(timing.sentences.at(-1)!.end).toBeGreaterThan(duration - 0.8);

    // Each sentence's voiced part lasts exactly as long as it does spoken alone (order kept although two ran at once).
    let at = 0;
    for (const [i, sentence] of timing.sentences.entries()) {
      const alone = join(dir, `alone-${i}.wav`);
      await speakLocally({ text: sentence.text, wavPath: alone });
      const span = await wavVoicedSpan(alone);
      expect(sentence.end - sentence.start).toBeCloseTo(span.to - span.from, 2);
      expect(sentence.start).toBeCloseTo(at + span.from, 2);
      at += await wavSeconds(alone);
    }
    expect(at).toBeCloseTo(duration, 2);
    expect((await readdir(dir)).filter((f) => f.startsWith("sentence-")).sort()).toEqual(["sentence-0000.wav", "sentence-0001.wav", "sentence-0002.wav"]);
  });

  it("speaks a script without sentence ends as one sentence, and passes voice options to every sentence", async () => {
    const dir = await workDir();
    const timing = await speakSentences({ text: "no full stop here", workDir: dir, wavPath: join(dir, "voice.wav") });
    expect(timing.sentences).toHaveLength(1);
    expect(timing.sentences[0]).toMatchObject({ text: "no full stop here" });
    expect(timing.sentences[0]!.start).toBeLessThan(0.1);
    const fast = await speakSentences({ text: script, speed: 2, workDir: dir, wavPath: join(dir, "fast.wav") });
    const normal = await speakSentences({ text: script, workDir: dir, wavPath: join(dir, "normal.wav") });
    expect(fast.sentences.at(-1)!.end).toBeLessThan(normal.sentences.at(-1)!.end * 0.7);
  });

  it("joins sentences that are only punctuation or symbols too", async () => {
    const dir = await workDir();
    const wavPath = join(dir, "voice.wav");
    const timing = await speakSentences({ text: "Hello. ... ?! 🎉. World.", workDir: dir, wavPath });
    expect(timing.sentences.map((s) => s.text)).toEqual(["Hello.", "...", "?!", "🎉.", "World."]);
    expect(timing.sentences.at(-1)!.end).toBeLessThanOrEqual((await probe(wavPath)).durationSeconds);
  });

  it("fails as espeak-ng does for a voice it has not, before joining anything", async () => {
    const dir = await workDir();
    await expect(speakSentences({ text: script, voice: "xx-nosuch", workDir: dir, wavPath: join(dir, "voice.wav") })).rejects.toBeInstanceOf(WorkInputError);
    expect(await readdir(dir)).not.toContain("voice.wav");
  });
});
