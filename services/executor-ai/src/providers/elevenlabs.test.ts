/** ElevenLabs' character alignment turned into sentence timing (pure functions, no server). */
import { describe, expect, it } from "vitest";
import { splitSentences } from "@vp/contracts";
import { type ElevenlabsAlignment, parseAlignment, sentencesFromAlignment } from "./elevenlabs";

/** An alignment of `text` where character i is said from `times[i][0]` to `times[i][1]` (default: 0.1 s each). */
function alignmentOf(text: string, times?: (i: number) => [number, number]): ElevenlabsAlignment {
  const characters = Array.from(text);
  const at = times ?? ((i: number) => [i / 10, (i + 1) / 10] as [number, number]);
  return {
    characters,
    character_start_times_seconds: characters.map((_, i) => at(i)[0]),
    character_end_times_seconds: characters.map((_, i) => at(i)[1]),
  };
}

describe("sentencesFromAlignment", () => {
  it("times each sentence from its first character's start to its last character's end", () => {
    const script = "Hi there. Go!";
    const sentences = sentencesFromAlignment(alignmentOf(script), splitSentences(script));
    // "Hi there." is characters 0-8, the space 9, "Go!" 10-12.
    expect(sentences).toEqual([
      { start: 0, end: 0.9, text: "Hi there." },
      { start: 1, end: 1.3, text: "Go!" },
    ]);
  });

  it("finds the sentences whatever white space the script had between and inside them", () => {
    const script = "  First line\n  goes on.\n\nSecond\tone?  Third.\n";
    const sentences = sentencesFromAlignment(alignmentOf(script), splitSentences(script))!;
    expect(sentences.map((s) => s.text)).toEqual(["First line goes on.", "Second one?", "Third."]);
    const index = (needle: string) => script.indexOf(needle);
    expect(sentences[0]).toMatchObject({ start: index("F") / 10, end: (index("on.") + 3) / 10 });
    expect(sentences[1]).toMatchObject({ start: index("S") / 10, end: (index("?") + 1) / 10 });
    expect(sentences[2]).toMatchObject({ start: index("Th") / 10, end: (index("d.") + 2) / 10 });
  });

  it("keeps the provider's real gaps (pauses between sentences) and rounds to milliseconds", () => {
    const script = "One. Two.";
    // Speech with a long pause after "One.": characters 4 (the space) and later start 0.6 s later.
    const alignment = alignmentOf(script, (i) => (i < 4 ? [i * 0.12345, (i + 1) * 0.12345] : [0.6 + i * 0.1, 0.6 + (i + 1) * 0.1]));
    expect(sentencesFromAlignment(alignment, splitSentences(script))).toEqual([
      { start: 0, end: 0.494, text: "One." },
      { start: 1.1, end: 1.5, text: "Two." },
    ]);
  });

  it("never lets a sentence start before the previous one ended, nor end before it starts", () => {
    const script = "A. B.";
    const overlapping = alignmentOf(script, (i) => (i < 2 ? [i * 0.5, i * 0.5 + 0.5] : [0.2, 0.1]));
    expect(sentencesFromAlignment(overlapping, splitSentences(script))).toEqual([
      { start: 0, end: 1, text: "A." },
      { start: 1, end: 1, text: "B." },
    ]);
  });

  it("handles accents and characters outside the basic plane (one aligned character, two UTF-16 units)", () => {
    const script = "Café 🎉 ist toll. Ja!";
    const sentences = sentencesFromAlignment(alignmentOf(script), splitSentences(script))!;
    expect(sentences.map((s) => s.text)).toEqual(["Café 🎉 ist toll.", "Ja!"]);
    // 20 code points: "J" is the 18th.
    expect(sentences[1]).toEqual({ start: 1.7, end: 2, text: "Ja!" });
  });

  it("is undefined when the aligned characters are not the script's", () => {
    const sentences = splitSentences("Hello there. Bye.");
    expect(sentencesFromAlignment(alignmentOf("Hello their. Bye."), sentences)).toBeUndefined();
    expect(sentencesFromAlignment(alignmentOf("Hello there."), sentences)).toBeUndefined();
    expect(sentencesFromAlignment(alignmentOf("Hello there. Bye. And more."), sentences)).toBeUndefined();
  });
});

describe("parseAlignment", () => {
  it("takes three arrays of one length with times, and nothing else", () => {
    const good = alignmentOf("Hi.");
    expect(parseAlignment(good)).toBe(good);
    expect(parseAlignment(null)).toBeUndefined();
    expect(parseAlignment(undefined)).toBeUndefined();
    expect(parseAlignment({ ...good, characters: [] })).toBeUndefined();
    expect(parseAlignment({ ...good, character_end_times_seconds: [0.1] })).toBeUndefined();
    expect(parseAlignment({ ...good, character_start_times_seconds: [0, "0.1", 0.2] })).toBeUndefined();
    expect(parseAlignment({ ...good, character_start_times_seconds: [0, -1, 0.2] })).toBeUndefined();
    expect(parseAlignment({ ...good, characters: ["H", 1, "."] })).toBeUndefined();
  });
});
