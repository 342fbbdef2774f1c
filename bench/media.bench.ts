/**
 * `npm run bench` (second part): what packages/media adds on top of ffmpeg. Each operation runs through the
 * media core (mergeVideos, mixAudio, composeVideo: what executor-ffmpeg and the lambdas call, including their
 * ffprobe of every input and of the output) and as the bare ffmpeg command a person would type for the same
 * result, alternately, on the same files in the same run; the ratio is median / median, and best / best
 * (the fastest run of each side: on a shared 2-core machine the median carries the neighbours' load).
 *
 *   merge-videos   100 MB of compatible 720p segments, stream copy   vs  ffmpeg -f concat -c copy
 *   mix-audio      the merged 100 s video + a 30 s voice, padded      vs  ffmpeg -map 0:v -map 1:a -c:v copy -af apad -shortest
 *   compose-video  a 20 s 1280x720 background + a 640x360 overlay     vs  ffmpeg -filter_complex scale+overlay, same encoder settings
 *
 * Prints a markdown table and writes bench/results/media-<timestamp>.json. BENCH_MEDIA_RUNS sets the runs
 * per side (default 7).
 */
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { composeVideo, makeSpeechClip, mergeVideos, mixAudio, overlayLayout } from "@vp/media";

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

/** Alternates bare and ours so drift of the machine (page cache, other load) hits both sides alike. */
async function measure(name: string, input: string, target: number, bare: (out: string) => Promise<unknown>, ours: (out: string, workDir: string) => Promise<unknown>, dir: string): Promise<Row> {
  const row: Row = { name, input, bare: [], ours: [], target };
  // One warm-up of each: page cache, shared libraries.
  await bare(join(dir, `${name}-warm-bare.mp4`));
  await mkdir(join(dir, `${name}-warm`));
  await ours(join(dir, `${name}-warm`, "output.mp4"), join(dir, `${name}-warm`));
  for (let i = 0; i < RUNS; i++) {
    const bareOut = join(dir, `${name}-bare-${i}.mp4`);
    let t = performance.now();
    await bare(bareOut);
    row.bare.push((performance.now() - t) / 1000);
    await rm(bareOut, { force: true });

    const workDir = join(dir, `${name}-ours-${i}`);
    await mkdir(workDir);
    t = performance.now();
    await ours(join(workDir, "output.mp4"), workDir);
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
        "-f", "lavfi", "-i", "testsrc2=s=1280x720:r=30:d=25",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=25",
        "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "8M", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "128k", "-ac", "2", "-movflags", "+faststart", path,
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
    await ffmpeg(["-f", "lavfi", "-i", "testsrc2=s=1280x720:r=25:d=20", "-f", "lavfi", "-i", "sine=d=20", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac", background]);
    await ffmpeg(["-f", "lavfi", "-i", "testsrc=s=640x360:r=25:d=20", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", overlay]);
    const box = overlayLayout({ width: 1280, height: 720 }, { width: 640, height: 360 }, { position: "bottom-right", size: 0.25 });

    const rows: Row[] = [];
    rows.push(
      await measure(
        "merge-videos",
        `4 segments, ${round(segmentBytes / 1024 / 1024, 1)} MB, stream copy`,
        1.1,
        (out) => ffmpeg(["-f", "concat", "-safe", "0", "-i", list, "-c", "copy", out]),
        (output, workDir) => mergeVideos({ inputs: segments, output, workDir, mode: "auto" }),
        dir,
      ),
    );
    rows.push(
      await measure(
        "mix-audio",
        "100 s 720p video (copied) + 30 s voice, padded",
        1.05,
        (out) => ffmpeg(["-i", video, "-i", voice, "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", "-af", "apad", "-c:a", "aac", "-b:a", "192k", "-ar", "48000", "-ac", "2", "-shortest", out]),
        (output, workDir) => mixAudio({ video, audio: voice, output, workDir, lengthMismatch: "pad" }),
        dir,
      ),
    );
    rows.push(
      await measure(
        "compose-video",
        "20 s 1280x720 + 640x360 overlay at 25 %",
        1.05,
        (out) =>
          ffmpeg([
            "-i", background, "-i", overlay,
            "-filter_complex", `[1:v]scale=${box.width}:${box.height}[o];[0:v][o]overlay=x=${box.x}:y=${box.y}:eof_action=pass[v]`,
            "-map", "[v]", "-map", "0:a", "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p", "-c:a", "copy", out,
          ]),
        (output, workDir) => composeVideo({ background, overlays: [overlay], specs: [{ position: "bottom-right", size: 0.25 }], output, workDir }),
        dir,
      ),
    );

    console.log(`\nMedia core vs bare ffmpeg, ${RUNS} alternating runs each (${new Date().toISOString().slice(0, 10)}):\n`);
    console.log("| operation | input | bare ffmpeg s (median / best) | media core s (median / best) | overhead ms (median) | ratio median | ratio best | target |");
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
      return { ...r, medianBare: bare, medianOurs: ours, ratio, bestRatio: best };
    });
    const out = resolve(import.meta.dirname, "results");
    await mkdir(out, { recursive: true });
    const file = join(out, `media-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
    await writeFile(file, JSON.stringify({ runs: RUNS, results }, null, 2));
    console.log(`\nraw numbers: ${file}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
