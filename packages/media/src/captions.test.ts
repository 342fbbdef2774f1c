import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  buildBurnCaptionsArgs,
  burnCaptions,
  captionsToAss,
  captionsToSrt,
  captionsToWebVtt,
  decodeFrame,
  escapeFilterValue,
  inputArgs,
  layoutCues,
  makeTestClip,
  MediaError,
  probe,
  streamHash,
  streamSummary,
  wrapCaption,
  type Cue,
} from "./index";

const execFileAsync = promisify(execFile);

const W = 640;
const H = 360;
const CUES: Cue[] = [
  { start: 0.5, end: 1.5, text: "Hello there." },
  { start: 2.5, end: 3.5, text: "Second sentence." },
];

let dir: string;
/** 4 s, 640x360 @25, solid dark grey (luma about 32) with a 440 Hz tone. */
let clip: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "vp-media-captions-"));
  clip = join(dir, "clip.mp4");
  await makeTestClip({ path: clip, durationSeconds: 4, width: W, height: H, fps: 25, color: "#202020" });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

let runs = 0;
async function freshWorkDir(name = `work-${++runs}`): Promise<string> {
  const workDir = join(dir, name);
  await mkdir(workDir);
  return workDir;
}

/** The frame at `atSeconds` as 8-bit luma, one byte per pixel. */
async function grayFrame(path: string, atSeconds: number): Promise<Buffer> {
  const { stdout } = await execFileAsync(
    "ffmpeg",
    ["-nostdin", "-v", "error", "-ss", String(atSeconds), ...inputArgs(path), "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray", "-"],
    { encoding: "buffer", maxBuffer: 16 * 1024 * 1024 },
  );
  expect(stdout.length).toBe(W * H);
  return stdout;
}

/** Pixels brighter than 200 in rows [fromRow, toRow). */
function brightPixels(frame: Buffer, fromRow: number, toRow: number): number {
  let n = 0;
  for (let i = fromRow * W; i < toRow * W; i++) if (frame[i]! > 200) n++;
  return n;
}
const FIFTH = H / 5;
const bottomFifth = (f: Buffer) => brightPixels(f, H - FIFTH, H);
const topFifth = (f: Buffer) => brightPixels(f, 0, FIFTH);

describe("wrapCaption", () => {
  it("wraps greedily at word boundaries, a line exactly as long as the limit included", () => {
    expect(wrapCaption("The quick brown fox jumps over the lazy dog", 10)).toEqual(["The quick", "brown fox", "jumps over", "the lazy", "dog"]);
    expect(wrapCaption("aaaa bbbbb", 10)).toEqual(["aaaa bbbbb"]);
    expect(wrapCaption("aaaa bbbbbb", 10)).toEqual(["aaaa", "bbbbbb"]);
    expect(wrapCaption("Hello there.")).toEqual(["Hello there."]);
  });

  it("cuts a word longer than a line into line-sized pieces, by user-perceived characters", () => {
    expect(wrapCaption("x Supercalifragilistic y", 5)).toEqual(["x", "Super", "calif", "ragil", "istic", "y"]);
    expect(wrapCaption("abcdefgh ij", 5)).toEqual(["abcde", "fgh", "ij"]);
    // Each thumb with its skin tone is one character, never cut in two.
    expect(wrapCaption("👍🏽👍🏽👍🏽", 2)).toEqual(["👍🏽👍🏽", "👍🏽"]);
    expect(wrapCaption("café crème", 4)).toEqual(["café", "crèm", "e"]);
  });

  it("makes one paragraph of any white space and drops control characters", () => {
    expect(wrapCaption("  a\n\n\tb\r\nc\u0007d\u2028e  ", 42)).toEqual(["a b cd e"]);
    expect(wrapCaption(" \n\t ", 42)).toEqual([]);
    expect(wrapCaption("", 42)).toEqual([]);
  });

  it("refuses a line length that is not a positive whole number", () => {
    for (const bad of [0, -1, 1.5, Number.NaN, 5000]) expect(() => wrapCaption("x", bad)).toThrow(MediaError);
  });
});

describe("layoutCues", () => {
  it("splits a cue that needs more than two lines into two-line cues over its time, in proportion to their characters", () => {
    // Lines at 20: "Hello there, how are" (20), "you doing today my" (18), "friend?" (7): 38 of 45 characters first.
    const cues = layoutCues([{ start: 0, end: 2, text: "Hello there, how are you doing today my friend?" }], 20);
    expect(cues).toEqual([
      { start: 0, end: 1.689, text: "Hello there, how are\nyou doing today my" },
      { start: 1.689, end: 2, text: "friend?" },
    ]);
  });

  it("spreads a long sentence over as many captions as it needs, back to back", () => {
    const text = Array.from({ length: 40 }, (_, i) => `word${i}`).join(" ");
    const cues = layoutCues([{ start: 10, end: 20, text }], 20);
    expect(cues.length).toBeGreaterThan(3);
    expect(cues[0]!.start).toBe(10);
    expect(cues.at(-1)!.end).toBe(20);
    for (let i = 1; i < cues.length; i++) expect(cues[i]!.start).toBe(cues[i - 1]!.end);
    for (const c of cues) {
      const lines = c.text.split("\n");
      expect(lines.length).toBeLessThanOrEqual(2);
      for (const l of lines) expect(l.length).toBeLessThanOrEqual(20);
    }
    expect(cues.map((c) => c.text.replaceAll("\n", " ")).join(" ")).toBe(text);
  });

  it("orders cues by start, leaves out cues with no text or no time, and lays out its own output unchanged", () => {
    const input: Cue[] = [
      { start: 3, end: 4, text: "third" },
      { start: 1, end: 2, text: "  " },
      { start: 0, end: 1, text: "first with a long enough text to need several lines of twenty" },
      { start: 2, end: 2, text: "no time" },
    ];
    const once = layoutCues(input, 20);
    expect(once.map((c) => c.text)).toEqual(["first with a long\nenough text to need", "several lines of\ntwenty", "third"]);
    expect(layoutCues(once, 20)).toEqual(once);
    expect(layoutCues([], 20)).toEqual([]);
  });

  it("refuses cues with impossible times", () => {
    expect(() => layoutCues([{ start: 2, end: 1, text: "x" }])).toThrow(new MediaError("cue 1 ends before it starts"));
    expect(() => layoutCues([CUES[0]!, { start: -1, end: 1, text: "x" }])).toThrow(new MediaError("cue 2: start and end must be seconds, 0 or more"));
    expect(() => layoutCues([{ start: 0, end: Number.POSITIVE_INFINITY, text: "x" }])).toThrow(MediaError);
  });
});

describe("captionsToWebVtt and captionsToSrt", () => {
  const cues: Cue[] = [...CUES, { start: 3723.004, end: 3725.5, text: "Tom & Jerry <3" }];

  it("writes WebVTT", () => {
    expect(captionsToWebVtt(cues)).toBe(
      "WEBVTT\n\n" +
        "00:00:00.500 --> 00:00:01.500\nHello there.\n\n" +
        "00:00:02.500 --> 00:00:03.500\nSecond sentence.\n\n" +
        "01:02:03.004 --> 01:02:05.500\nTom &amp; Jerry &lt;3\n",
    );
    expect(captionsToWebVtt([])).toBe("WEBVTT\n");
  });

  it("writes SRT, numbered from 1", () => {
    expect(captionsToSrt(cues)).toBe(
      "1\n00:00:00,500 --> 00:00:01,500\nHello there.\n\n" +
        "2\n00:00:02,500 --> 00:00:03,500\nSecond sentence.\n\n" +
        "3\n01:02:03,004 --> 01:02:05,500\nTom & Jerry <3\n",
    );
    expect(captionsToSrt([])).toBe("");
  });

  it("shows the same two-line cues as the burned-in captions", () => {
    const long = [{ start: 0, end: 2, text: "Hello there, how are you doing today my friend?" }];
    expect(captionsToSrt(long, 20)).toBe(
      "1\n00:00:00,000 --> 00:00:01,689\nHello there, how are\nyou doing today my\n\n2\n00:00:01,689 --> 00:00:02,000\nfriend?\n",
    );
    expect(captionsToWebVtt(long, 20)).toBe(
      "WEBVTT\n\n00:00:00.000 --> 00:00:01.689\nHello there, how are\nyou doing today my\n\n00:00:01.689 --> 00:00:02.000\nfriend?\n",
    );
  });

  it("keeps cue text from making structure: no blank lines, no timing lines, no tags", () => {
    const hostile: Cue[] = [{ start: 1, end: 2, text: "a <b>bold</b> & c --> d\n\n2\n00:00:05,000 --> 00:00:09,000\nWEBVTT ---> e" }];
    const vtt = captionsToWebVtt(hostile, 80);
    expect(vtt).toBe("WEBVTT\n\n00:00:01.000 --> 00:00:02.000\na &lt;b&gt;bold&lt;/b&gt; &amp; c -&gt; d 2 00:00:05,000 -&gt; 00:00:09,000 WEBVTT -&gt; e\n");
    const srt = captionsToSrt(hostile, 80);
    expect(srt).toBe("1\n00:00:01,000 --> 00:00:02,000\na <b>bold</b> & c -> d 2 00:00:05,000 -> 00:00:09,000 WEBVTT -> e\n");
    for (const file of [vtt, srt]) expect(file.match(/-->/g)).toHaveLength(1);
  });
});

describe("captionsToAss", () => {
  it("writes a script sized to the video, with the style's colours as &HAABBGGRR and the position as alignment", () => {
    const ass = captionsToAss(CUES, { width: 1920, height: 1080 }, { textColor: "#FFCC00", outlineColor: "#102030", position: "top" });
    expect(ass).toContain("PlayResX: 1920\nPlayResY: 1080\n");
    // 5 % of 1080 = 54 px; yellow #FFCC00 -> &H0000CCFF; outline #102030 -> &H00302010; alignment 8 (top); margins 5 %.
    expect(ass).toContain("Style: Default,DejaVu Sans,54,&H0000CCFF,&H0000CCFF,&H00302010,&H00302010,0,0,0,0,100,100,0,0,1,3,0,8,96,96,54,1\n");
    expect(ass).toContain(
      "Dialogue: 0,0:00:00.50,0:00:01.50,Default,,0,0,0,,Hello there.\nDialogue: 0,0:00:02.50,0:00:03.50,Default,,0,0,0,,Second sentence.\n",
    );
    // A box: BorderStyle 3 in the background colour; centre is alignment 5.
    const boxed = captionsToAss(CUES, { width: 1920, height: 1080 }, { backgroundColor: "#0000ff", position: "center" });
    expect(boxed).toContain(",&H00FFFFFF,&H00FFFFFF,&H00FF0000,&H00FF0000,0,0,0,0,100,100,0,0,3,9,0,5,");
  });

  it("fits a full line into a portrait frame's width", () => {
    const ass = captionsToAss(CUES, { width: 1080, height: 1920 }, {});
    const fontSize = Number(/Style: Default,DejaVu Sans,(\d+),/.exec(ass)![1]);
    expect(fontSize).toBeLessThan(1920 * 0.05);
    expect(fontSize * 0.55 * 42).toBeLessThanOrEqual(1080 * 0.9);
  });

  it("shows override braces and backslash sequences as text, and keeps each cue on one Dialogue line", () => {
    const ass = captionsToAss(
      [{ start: 0, end: 1, text: "{\\fs200\\c&H0000FF&}Big \\N \\h \\{x\\} end\nDialogue: 0,0:00:00.00,9:00:00.00,Default,,0,0,0,,owned" }],
      {
        width: 640,
        height: 360,
      },
      { maxCharsPerLine: 200 },
    );
    const dialogue = ass.split("\n").filter((l) => l.startsWith("Dialogue:"));
    expect(dialogue).toEqual([
      "Dialogue: 0,0:00:00.00,0:00:01.00,Default,,0,0,0,,\\{\\fs200\\c&H0000FF&\\}Big \u2216N \u2216h \\\\{x\\\\} end Dialogue: 0,0:00:00.00,9:00:00.00,Default,,0,0,0,,owned",
    ]);
  });

  it("refuses a bad style with the reason", () => {
    const size = { width: 640, height: 360 };
    for (const textColor of ["white", "#FFF", "#12345G", "#FFFFFF:x=1", "#FFFFFF00"]) {
      expect(() => captionsToAss(CUES, size, { textColor })).toThrow(
        new MediaError(`caption textColor must be a colour written #RRGGBB, not ${JSON.stringify(textColor)}`),
      );
    }
    expect(() => captionsToAss(CUES, size, { backgroundColor: "blue" })).toThrow(MediaError);
    expect(() => captionsToAss(CUES, size, { outlineColor: "" })).toThrow(MediaError);
    expect(() => captionsToAss(CUES, size, { position: "left" as never })).toThrow(
      new MediaError('caption position must be bottom, top or center, not "left"'),
    );
    expect(() => captionsToAss(CUES, size, { position: "toString" as never })).toThrow(MediaError);
    for (const fontSize of [0, -5, 400, Number.NaN]) expect(() => captionsToAss(CUES, size, { fontSize })).toThrow(MediaError);
    expect(() => captionsToAss(CUES, size, { maxCharsPerLine: 0 })).toThrow(MediaError);
  });
});

describe("escapeFilterValue", () => {
  it("quotes a path for the option parser and then the filtergraph parser", () => {
    expect(escapeFilterValue("file:/tmp/plain/captions-1.ass")).toBe("file\\\\:/tmp/plain/captions-1.ass");
    expect(escapeFilterValue("/tmp/a:b'c,d;e[f]g\\h i=j.ass")).toBe(String.raw`/tmp/a\\:b\\\'c\,d\;e\[f\]g\\\\h\\\ i=j.ass`);
  });

  it("puts only the generated subtitle file's path into the arguments", async () => {
    const input = await probe(clip);
    const args = buildBurnCaptionsArgs(clip, join(dir, "w:1", "captions-x.ass"), input, join(dir, "out.mp4"));
    expect(args[args.indexOf("-vf") + 1]).toBe(`subtitles=filename=${escapeFilterValue(`file:${join(dir, "w:1", "captions-x.ass")}`)}`);
    expect(args.slice(0, 6)).toEqual(["-protocol_whitelist", "file", "-format_whitelist", expect.any(String), "-i", `file:${clip}`]);
    expect(args.join(" ")).toContain("-c:a copy");
  });
});

describe("burnCaptions", () => {
  it("burns captions that show while their cue lasts and only then, keeping size, duration and audio", async () => {
    const workDir = await freshWorkDir();
    const output = join(workDir, "output.mp4");
    const progress: number[] = [];
    const result = await burnCaptions({ video: clip, cues: CUES, output, workDir, onProgress: (p) => progress.push(p) });

    expect(result.cues).toEqual(CUES);
    expect(result.cpuSeconds).toBeGreaterThanOrEqual(0);
    expect(result.probe.video).toMatchObject({ width: W, height: H, fps: 25, codec: "h264", pixFmt: "yuv420p" });
    expect(Math.abs(result.probe.durationSeconds - 4)).toBeLessThanOrEqual(0.1);
    expect((await streamSummary(output)).map((s) => s.type)).toEqual(["video", "audio"]);
    // The audio is copied as it was.
    expect(await streamHash(output, "a:0")).toBe(await streamHash(clip, "a:0"));

    const [at1, at2, at3] = await Promise.all([grayFrame(output, 1), grayFrame(output, 2), grayFrame(output, 3)]);
    expect(bottomFifth(at1)).toBeGreaterThan(150);
    expect(bottomFifth(at3)).toBeGreaterThan(150);
    expect(bottomFifth(at2)).toBeLessThan(5);
    // Nothing bright anywhere else: the dark background is left alone.
    expect(brightPixels(at1, 0, H - FIFTH)).toBe(0);
    expect(brightPixels(await grayFrame(clip, 1), 0, H)).toBe(0);

    expect(progress.at(-1)).toBe(100);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    // The generated subtitle file is gone; only the output remains.
    expect(await readdir(workDir)).toEqual(["output.mp4"]);
  });

  it("puts captions at the top", async () => {
    const workDir = await freshWorkDir();
    const output = join(workDir, "output.mp4");
    await burnCaptions({ video: clip, cues: CUES, output, workDir, style: { position: "top" } });
    const [at1, at2] = await Promise.all([grayFrame(output, 1), grayFrame(output, 2)]);
    expect(topFifth(at1)).toBeGreaterThan(150);
    expect(brightPixels(at1, FIFTH, H)).toBe(0);
    expect(topFifth(at2)).toBeLessThan(5);
  });

  it("draws the text colour on an opaque box in the background colour", async () => {
    const workDir = await freshWorkDir();
    const output = join(workDir, "output.mp4");
    await burnCaptions({ video: clip, cues: CUES, output, workDir, style: { textColor: "#FFFF00", backgroundColor: "#0000FF", fontSize: 24 } });
    const count = async (at: number, test: (r: number, g: number, b: number) => boolean) => {
      const frame = await decodeFrame(output, at, { width: W, height: H });
      let n = 0;
      for (let y = H - FIFTH; y < H; y++) for (let x = 0; x < W; x++) if (test(...frame.pixel(x, y))) n++;
      return n;
    };
    const blue = (r: number, g: number, b: number) => b > 180 && r < 80 && g < 80;
    const yellow = (r: number, g: number, b: number) => r > 180 && g > 180 && b < 100;
    expect(await count(1, blue)).toBeGreaterThan(1000);
    expect(await count(1, yellow)).toBeGreaterThan(100);
    expect(await count(2, blue)).toBe(0);
  });

  it("splits a long sentence into captions shown in turn and returns them", async () => {
    const workDir = await freshWorkDir();
    const text = "This sentence is far too long to fit on two lines of a caption, so it is shown as two captions in turn.";
    const result = await burnCaptions({ video: clip, cues: [{ start: 0.2, end: 3.8, text }], output: join(workDir, "output.mp4"), workDir });
    expect(result.cues).toEqual(layoutCues([{ start: 0.2, end: 3.8, text }]));
    expect(result.cues).toHaveLength(2);
    const [first, second] = await Promise.all([grayFrame(join(workDir, "output.mp4"), 0.5), grayFrame(join(workDir, "output.mp4"), 3.6)]);
    expect(bottomFifth(first)).toBeGreaterThan(150);
    expect(bottomFifth(second)).toBeGreaterThan(150);
  });

  it("works in a directory whose path holds ffmpeg's filter syntax, and renders hostile text as plain text", async () => {
    const workDir = await freshWorkDir("wd: it's,a;b[c]\\d=x");
    const output = join(workDir, "output.mp4");
    // Were the overrides applied, the text would be 200 px tall (reaching far above the bottom fifth) and red.
    const result = await burnCaptions({ video: clip, cues: [{ start: 0.5, end: 1.5, text: "{\\fs200\\c&H0000FF&}Big \\N done" }], output, workDir });
    expect(result.cues).toEqual([{ start: 0.5, end: 1.5, text: "{\\fs200\\c&H0000FF&}Big \\N done" }]);
    const at1 = await grayFrame(output, 1);
    expect(bottomFifth(at1)).toBeGreaterThan(150);
    expect(brightPixels(at1, 0, H - FIFTH)).toBe(0);
    expect(await readdir(workDir)).toEqual(["output.mp4"]);
  });

  it("refuses a bad style or a video without a picture before running ffmpeg", async () => {
    const workDir = await freshWorkDir();
    const output = join(workDir, "output.mp4");
    await expect(burnCaptions({ video: clip, cues: CUES, output, workDir, style: { textColor: "red" } })).rejects.toThrow(
      new MediaError('caption textColor must be a colour written #RRGGBB, not "red"'),
    );
    const audioOnly = join(dir, "tone.m4a");
    await execFileAsync("ffmpeg", ["-nostdin", "-v", "error", "-y", ...inputArgs(clip), "-vn", "-c:a", "copy", "-f", "mp4", `file:${audioOnly}`]);
    await expect(burnCaptions({ video: audioOnly, cues: CUES, output, workDir })).rejects.toThrow(new MediaError("the video input has no video stream"));
    expect(await readdir(workDir)).toEqual([]);
  });
});
