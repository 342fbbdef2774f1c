/**
 * `npm run bench` (second part): what packages/media adds on top of ffmpeg. Each operation runs through the
 * media core as executor-ffmpeg's handlers (and the lambdas) call it: the inputs sit in the job's work
 * directory under generated names, each is described by probeInput from the probe facts its producer stored
 * in its node output (the facts are taken once, as the asset node takes them at upload; probeInput checks
 * them against the file's size, and probes when they are missing), then mergeVideos / mixAudio /
 * composeVideo run, describing or probing their output as they do for the handler. Against that, the bare
 * ffmpeg command a person would type for the same result, alternately, on the same files in the same run;
 * the ratio is median / median, and best / best (the fastest run of each side: on a shared 2-core machine
 * the median carries the neighbours' load).
 *
 *   merge-videos   100 MB of compatible 720p segments, stream copy   vs  ffmpeg -f concat -c copy
 *   mix-audio      the merged 100 s video + a 30 s voice, padded      vs  ffmpeg -map 0:v -map 1:a -c:v copy -af apad -shortest
 *   compose-video  a 20 s 1280x720 background + a 640x360 overlay     vs  ffmpeg -filter_complex scale+overlay, same encoder settings
 *
 * Prints a markdown table and writes bench/results/media-<timestamp>.json. BENCH_MEDIA_RUNS sets the runs
 * per side (default 7).
 */
import { execFile } from "node:child_process";
import { link, mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import { promisify } from "node:util";
import { composeVideo, factsOfProbe, makeSpeechClip, mergeVideos, mixAudio, overlayLayout, probe, probeInput, type MediaFacts } from "@vp/media";

const exec = promisify(execFile);
const RUNS = Math.max(1, Number(process.env.BENCH_MEDIA_RUNS ?? 7));

const median = (values: number[]) => {
  const s = [...values].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const round = (n: number, d = 3) => Math.round(n * 10 ** d) / 10 ** d;

const ffmpeg = (args: string[]) => exec("ffmpeg", ["-nostdin", "-hide_banner", "-v", "error", "-y", ...args], { maxBuffer: 16 * 1024 * 1024 });

interface Row {
  name: string;
  input: string;
  bare: number[];
  ours: number[];
  target: number;
}

/** An input as a handler has it: downloaded into the job's work directory under a generated name, with its stored facts. */
interface JobInput {
  /** The file outside any job (what storage holds). */
  source: string;
  /** Its generated name in the work directory (`seg-000.mp4`, `video.mp4`, ...). */
  name: string;
  facts: MediaFacts;
}

/** The facts the producing node stored in its output (the asset node probes each upload once). */
async function stored(source: string, name: string): Promise<JobInput> {
  return { source, name, facts: factsOfProbe(await probe(source)) };
}

/** Hard links stand in for the download (not timed on either side): the same bytes, in the page cache. */
async function placeInputs(workDir: string, inputs: readonly JobInput[]): Promise<string[]> {
  return Promise.all(
    inputs.map(async (input) => {
      const path = join(workDir, input.name);
      await link(input.source, path);
      return path;
    }),
  );
}

/** Alternates bare and ours so drift of the machine (page cache, other load) hits both sides alike. */
async function measure(
  name: string,
  input: string,
  target: number,
  inputs: readonly JobInput[],
  bare: (out: string) => Promise<unknown>,
  ours: (paths: string[], out: string, workDir: string) => Promise<unknown>,
  dir: string,
): Promise<Row> {
  const row: Row = { name, input, bare: [], ours: [], target };
  // One warm-up of each: page cache, shared libraries.
  await bare(join(dir, `${name}-warm-bare.mp4`));
  const warm = join(dir, `${name}-warm`);
  await mkdir(warm);
  await ours(await placeInputs(warm, inputs), join(warm, "output.mp4"), warm);
  await rm(warm, { recursive: true, force: true });
  for (let i = 0; i < RUNS; i++) {
    const bareOut = join(dir, `${name}-bare-${i}.mp4`);
    let t = performance.now();
    await bare(bareOut);
    row.bare.push((performance.now() - t) / 1000);
    await rm(bareOut, { force: true });

    const workDir = join(dir, `${name}-ours-${i}`);
    await mkdir(workDir);
    const paths = await placeInputs(workDir, inputs);
    t = performance.now();
    await ours(paths, join(workDir, "output.mp4"), workDir);
    row.ours.push((performance.now() - t) / 1000);
    await rm(workDir, { recursive: true, force: true });
    process.stderr.write(`${name} run ${i + 1}/${RUNS}: bare ${round(row.bare.at(-1)!)} s, ours ${round(row.ours.at(-1)!)} s\n`);
  }
  return row;
}

async function main() {
  const dir = await mkdtemp(join(tmpdir(), "vp-bench-media-"));
  try {
    process.stderr.write("generating inputs (100 MB of segments, a voice, a background and an overlay)...\n");
    const segments = [0, 1, 2, 3].map((i) => join(dir, `seg-00${i}.mp4`));
    for (const path of segments) {
      await ffmpeg([
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=1280x720:r=30:d=25",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000:duration=25",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-b:v",
        "8M",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-b:a",
        "128k",
        "-ac",
        "2",
        "-movflags",
        "+faststart",
        path,
      ]);
    }
    const segmentBytes = (await Promise.all(segments.map((s) => stat(s)))).reduce((n, s) => n + s.size, 0);
    const list = join(dir, "list.txt");
    await writeFile(list, segments.map((s) => `file '${s.split("/").pop()}'`).join("\n") + "\n");
    const video = join(dir, "video-100s.mp4");
    await ffmpeg(["-f", "concat", "-safe", "0", "-i", list, "-c", "copy", "-movflags", "+faststart", video]);
    const voice = join(dir, "voice.wav");
    await makeSpeechClip({
      path: voice,
      text: "This is the voice over of the benchmark. It runs for thirty seconds, and after it the video goes on in silence. ".repeat(3),
      durationSeconds: 30,
      workDir: dir,
    });
    const background = join(dir, "background.mp4");
    const overlay = join(dir, "overlay.mp4");
    await ffmpeg([
      "-f",
      "lavfi",
      "-i",
      "testsrc2=s=1280x720:r=25:d=20",
      "-f",
      "lavfi",
      "-i",
      "sine=d=20",
      "-c:v",
      "libx264",
      "-preset",
      "veryfast",
      "-pix_fmt",
      "yuv420p",
      "-c:a",
      "aac",
      background,
    ]);
    await ffmpeg(["-f", "lavfi", "-i", "testsrc=s=640x360:r=25:d=20", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", overlay]);
    const box = overlayLayout({ width: 1280, height: 720 }, { width: 640, height: 360 }, { position: "bottom-right", size: 0.25 });

    // What the upstream nodes stored about each file, and the names the handlers download them under.
    const segmentInputs = await Promise.all(segments.map((s) => stored(s, basename(s))));
    const mixInputs = await Promise.all([stored(video, "video.mp4"), stored(voice, "audio.wav")]);
    const composeInputs = await Promise.all([stored(background, "background.mp4"), stored(overlay, "overlay-000.mp4")]);
    /** fetchInput of the handlers: each input described from its stored facts (or probed when they do not fit it). */
    const describe = (paths: readonly string[], inputs: readonly JobInput[]) => Promise.all(paths.map((p, i) => probeInput(p, inputs[i]!.facts)));

    const loadAtStart = loadavg();
    const rows: Row[] = [];
    rows.push(
      await measure(
        "merge-videos",
        `4 segments, ${round(segmentBytes / 1024 / 1024, 1)} MB, stream copy`,
        1.1,
        segmentInputs,
        (out) => ffmpeg(["-f", "concat", "-safe", "0", "-i", list, "-c", "copy", out]),
        async (paths, output, workDir) => mergeVideos({ inputs: paths, probes: await describe(paths, segmentInputs), output, workDir, mode: "auto" }),
        dir,
      ),
    );
    rows.push(
      await measure(
        "mix-audio",
        "100 s 720p video (copied) + 30 s voice, padded",
        1.05,
        mixInputs,
        (out) =>
          ffmpeg([
            "-i",
            video,
            "-i",
            voice,
            "-map",
            "0:v:0",
            "-map",
            "1:a:0",
            "-c:v",
            "copy",
            "-af",
            "apad",
            "-c:a",
            "aac",
            "-b:a",
            "192k",
            "-ar",
            "48000",
            "-ac",
            "2",
            "-shortest",
            out,
          ]),
        async ([v, a], output, workDir) => {
          const [pv, pa] = await describe([v!, a!], mixInputs);
          return mixAudio({ video: v!, audio: a!, probes: { video: pv, audio: pa }, output, workDir, lengthMismatch: "pad" });
        },
        dir,
      ),
    );
    rows.push(
      await measure(
        "compose-video",
        "20 s 1280x720 + 640x360 overlay at 25 %",
        1.05,
        composeInputs,
        (out) =>
          ffmpeg([
            "-i",
            background,
            "-i",
            overlay,
            "-filter_complex",
            `[1:v]scale=${box.width}:${box.height}[o];[0:v][o]overlay=x=${box.x}:y=${box.y}:eof_action=pass[v]`,
            "-map",
            "[v]",
            "-map",
            "0:a",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "20",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "copy",
            out,
          ]),
        async ([b, o], output, workDir) => {
          const [pb, po] = await describe([b!, o!], composeInputs);
          return composeVideo({
            background: b!,
            overlays: [o!],
            probes: { background: pb, overlays: [po!] },
            specs: [{ position: "bottom-right", size: 0.25 }],
            output,
            workDir,
          });
        },
        dir,
      ),
    );

    const loadAtEnd = loadavg();
    const load = (l: number[]) => l.map((n) => n.toFixed(2)).join(" / ");
    console.log(`\nMedia core vs bare ffmpeg, ${RUNS} alternating runs each (${new Date().toISOString().slice(0, 10)}):\n`);
    console.log(
      "| operation | input | bare ffmpeg s (median / best) | media core s (median / best) | overhead ms (median) | ratio median | ratio best | target |",
    );
    console.log("|---|---|---|---|---|---|---|---|");
    const results = rows.map((r) => {
      const bare = median(r.bare);
      const ours = median(r.ours);
      const ratio = ours / bare;
      const best = Math.min(...r.ours) / Math.min(...r.bare);
      console.log(
        `| ${r.name} | ${r.input} | ${round(bare)} / ${round(Math.min(...r.bare))} | ${round(ours)} / ${round(Math.min(...r.ours))} | ` +
          `${Math.round((ours - bare) * 1000)} | ${round(ratio, 2)}x | ${round(best, 2)}x | <= ${r.target} ${ratio <= r.target ? "met" : best <= r.target ? "met (best)" : "NOT met"} |`,
      );
      return { ...r, medianBare: bare, medianOurs: ours, ratio, bestRatio: best, met: ratio <= r.target };
    });
    const met = results.filter((r) => r.met).map((r) => r.name);
    const missed = results.filter((r) => !r.met).map((r) => `${r.name} (${round(r.ratio, 2)}x > ${r.target})`);
    console.log(`\ntargets met on the median ratio: ${met.join(", ") || "none"}; not met: ${missed.join(", ") || "none"}`);
    console.log(`load average (1 / 5 / 15 min): ${load(loadAtStart)} at the start of the runs, ${load(loadAtEnd)} at the end`);
    const out = resolve(import.meta.dirname, "results");
    await mkdir(out, { recursive: true });
    const file = join(out, `media-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
    await writeFile(file, JSON.stringify({ runs: RUNS, loadAtStart, loadAtEnd, results }, null, 2));
    console.log(`\nraw numbers: ${file}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
