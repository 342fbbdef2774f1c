import { z } from "zod";

/** A stretch of speech: `text` is said from `start` to `end`, in seconds from the start of the audio. */
export const TimedText = z.object({
  start: z.number().nonnegative(),
  end: z.number().nonnegative(),
  text: z.string(),
});
export type TimedText = z.infer<typeof TimedText>;

/**
 * When each sentence of a speech is said, recorded by the voiceover nodes in their output (`output.timing`) and
 * read by captions. `source` says how it was found: measured (the local voice spoke each sentence on its own and
 * its length was measured), provider (the provider's own alignment, e.g. ElevenLabs' character timestamps),
 * estimated (spread over a known length by word count).
 */
export const SpeechTiming = z.object({
  source: z.enum(["measured", "provider", "estimated"]),
  sentences: z.array(TimedText).max(10_000),
});
export type SpeechTiming = z.infer<typeof SpeechTiming>;

/**
 * The sentences of a script, in order, trimmed, none empty: a sentence ends at ., ! or ? (with any closing
 * quotes or brackets) followed by white space, or at a blank line. Text without such an end is one sentence.
 */
export function splitSentences(text: string): string[] {
  return text
    .split(/(?<=[.!?…]["'”’)\]]*)\s+|\n\s*\n/u)
    .map((s) => s.replace(/\s+/g, " ").trim())
    .filter((s) => s.length > 0);
}

/** Words of a sentence, as counted for spreading sentences over a length. */
export function wordCount(text: string): number {
  return text.split(/\s+/).filter(Boolean).length;
}

/**
 * Sentences spread over `durationSeconds` in proportion to their word counts, back to back from 0: the timing a
 * script has when nothing measured it.
 */
export function spreadByWords(sentences: readonly string[], durationSeconds: number): TimedText[] {
  const counts = sentences.map((s) => Math.max(1, wordCount(s)));
  const total = counts.reduce((a, b) => a + b, 0);
  let at = 0;
  return sentences.map((text, i) => {
    const start = at;
    at += (durationSeconds * counts[i]!) / total;
    return { start: round3(start), end: round3(i === sentences.length - 1 ? durationSeconds : at), text };
  });
}

const round3 = (n: number) => Math.round(n * 1000) / 1000;
