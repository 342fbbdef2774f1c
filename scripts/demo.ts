/**
 * `npm start`'s demo: one pipeline that uses every node type, built and run through the gateway's HTTP API only,
 * on this machine (local AI providers, ffmpeg, Debian's Chromium; no API key, no money). The media assets are
 * generated here and uploaded; the pipeline then runs as one "run all":
 *
 *   script (text) ──▶ voiceover (generate-voiceover) ─────────────────────────────┐
 *         └───────▶ presenter (talking-head) ───────────────────────────────────┐ │
 *   still (image) ─▶ animation (generate-animation) ─┐                           │ │
 *   code (text) ──▶ typing (render-code) ────────────┼─▶ cut (merge-videos)      │ │
 *   intro (video) ───────────────────────────────────┘     │                     │ │
 *   music (audio) ───────────────────────────▶ scored (mix-audio: music under the cut)
 *                                                 narrated (mix-audio: the voiceover over the music) ◀┘
 *                                                 final (compose-video: the presenter picture-in-picture) ◀┘
 *                                                 captioned (captions: the voiceover's sentences burned in, with VTT/SRT)
 *
 * Every node's output is checked (media type, duration, size, and that the API serves exactly that many bytes)
 * and printed on one line; a node that failed or an output that is wrong fails the demo.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NODE_TYPES, type NodeType } from "@vp/contracts";
import { fileArg, makeTestClip, runFfmpeg } from "@vp/media";
import { AI_DEMO_PROMPT, AI_DEMO_SCRIPT, demoApi, type AiDemoNode } from "./demo-ai";

export const DEMO_CODE = `for (let lap = 1; lap <= 3; lap++) {
  console.log(\`lap \${lap}\`);
}`;

const INTRO_SECONDS = 2;
const MUSIC_SECONDS = 20;
const ANIMATION_SECONDS = 4;

type MediaType = "text" | "video" | "audio" | "image";

/** A node of the demo and what its output must be. */
interface DemoNodeSpec {
  id: string;
  title: string;
  type: NodeType;
  media: MediaType;
  inputs?: Record<string, string[]>;
  config?: Record<string, unknown>;
  asset?: Record<string, unknown>;
  /** A generated file uploaded as the asset. */
  upload?: { file: string; contentType: string };
  position: { x: number; y: number };
  /** Expected duration in seconds (± tolerance), from the other nodes' outputs where it follows from them. */
  duration?: (outputs: Map<string, DemoOutput>) => { seconds: number; tolerance: number } | undefined;
}

export interface DemoOutput {
  type: MediaType;
  s3Key: string;
  size: number;
  duration?: number;
  width?: number;
  height?: number;
  provider?: string;
}

export interface DemoResult {
  pipelineId: string;
  nodes: Map<string, AiDemoNode>;
  /** One line per node: id, type, duration, size (what the demo printed). */
  lines: string[];
  /** The storage key of the final composite. */
  finalKey: string;
}

export interface DemoOptions {
  /** The gateway's API root, e.g. http://127.0.0.1:3061/v1/video_production */
  apiRoot: string;
  /** Bearer token with editor and operator roles (the dev login's). */
  token?: string;
  log: (line: string) => void;
  /** Called once the pipeline exists (to print where to watch it). */
  onPipeline?: (pipelineId: string) => void;
  timeoutMs?: number;
}

const at = (column: number, row: number) => ({ x: column * 380, y: row * 290 });
const durationOf = (outputs: Map<string, DemoOutput>, id: string) => outputs.get(id)?.duration ?? Number.NaN;

function specs(dir: string): DemoNodeSpec[] {
  return [
    { id: "script", title: "Lesson script", type: "asset", media: "text", asset: { type: "text", content: AI_DEMO_SCRIPT }, position: at(0, 0) },
    { id: "code", title: "Loop code", type: "asset", media: "text", asset: { type: "text", content: DEMO_CODE }, position: at(0, 1) },
    {
      id: "still",
      title: "First frame",
      type: "asset",
      media: "image",
      asset: { type: "image" },
      upload: { file: join(dir, "still.png"), contentType: "image/png" },
      position: at(0, 2),
    },
    {
      id: "intro",
      title: "Intro",
      type: "asset",
      media: "video",
      asset: { type: "video" },
      upload: { file: join(dir, "intro.mp4"), contentType: "video/mp4" },
      position: at(0, 3),
      duration: () => ({ seconds: INTRO_SECONDS, tolerance: 0.1 }),
    },
    {
      id: "music",
      title: "Music bed",
      type: "asset",
      media: "audio",
      asset: { type: "audio" },
      upload: { file: join(dir, "music.m4a"), contentType: "audio/mp4" },
      position: at(0, 4),
      duration: () => ({ seconds: MUSIC_SECONDS, tolerance: 0.1 }),
    },
    {
      id: "voiceover",
      title: "Narration",
      type: "generate-voiceover",
      media: "audio",
      inputs: { script: ["script"] },
      config: { voiceId: "en-us", speed: 1.05 },
      position: at(1, 0),
    },
    {
      id: "presenter",
      title: "Loops, lesson 1",
      type: "talking-head",
      media: "video",
      inputs: { script: ["script"] },
      config: { width: 640, height: 360 },
      position: at(1, 1),
      // The local presenter speaks the same script as the voiceover.
      duration: (o) => ({ seconds: durationOf(o, "voiceover"), tolerance: 1.5 }),
    },
    {
      id: "animation",
      title: "Ocean intro",
      type: "generate-animation",
      media: "video",
      inputs: { image: ["still"] },
      config: { prompt: AI_DEMO_PROMPT, durationSeconds: ANIMATION_SECONDS },
      position: at(1, 2),
      duration: () => ({ seconds: ANIMATION_SECONDS, tolerance: 0.25 }),
    },
    {
      id: "typing",
      title: "The loop, typed",
      type: "render-code",
      media: "video",
      inputs: { code: ["code"] },
      config: { language: "javascript", theme: "dark", typingSpeed: 40, width: 640, height: 360, fps: 30 },
      position: at(1, 3),
    },
    {
      id: "cut",
      title: "Cut",
      type: "merge-videos",
      media: "video",
      inputs: { segments: ["intro", "animation", "typing"] },
      position: at(2, 3),
      duration: (o) => ({ seconds: durationOf(o, "intro") + durationOf(o, "animation") + durationOf(o, "typing"), tolerance: 0.5 }),
    },
    {
      id: "scored",
      title: "Cut with music",
      type: "mix-audio",
      media: "video",
      inputs: { video: ["cut"], audio: ["music"] },
      config: { mode: "replace", lengthMismatch: "pad" },
      position: at(3, 3),
      duration: (o) => ({ seconds: durationOf(o, "cut"), tolerance: 0.25 }),
    },
    {
      id: "narrated",
      title: "Narrated",
      type: "mix-audio",
      media: "video",
      inputs: { video: ["scored"], audio: ["voiceover"] },
      config: { mode: "duck", originalGain: 0.25, lengthMismatch: "pad" },
      position: at(4, 2),
      duration: (o) => ({ seconds: durationOf(o, "scored"), tolerance: 0.25 }),
    },
    {
      id: "final",
      title: "Final",
      type: "compose-video",
      media: "video",
      inputs: { background: ["narrated"], overlays: ["presenter"] },
      config: { overlays: [{ position: "bottom-right", size: 0.3, borderWidth: 2 }], audio: "background" },
      position: at(5, 2),
      duration: (o) => ({ seconds: durationOf(o, "narrated"), tolerance: 0.25 }),
    },
    {
      id: "captioned",
      title: "Final, captioned",
      type: "captions",
      media: "video",
      inputs: { video: ["final"], speech: ["voiceover"] },
      config: { position: "top" },
      position: at(6, 2),
      duration: (o) => ({ seconds: durationOf(o, "final"), tolerance: 0.25 }),
    },
  ];
}

/** The uploaded media, generated with ffmpeg: a test-pattern clip with a tone, a still frame, a chord. */
async function makeMedia(dir: string) {
  await makeTestClip({ path: join(dir, "intro.mp4"), durationSeconds: INTRO_SECONDS, width: 640, height: 360, fps: 30, audio: true });
  await runFfmpeg(["-f", "lavfi", "-i", "testsrc2=s=640x360:d=1", "-frames:v", "1", "-c:v", "png", "-f", "image2", fileArg(join(dir, "still.png"))]);
  // A C major chord, quiet enough to sit under a voice.
  const chord = "0.15*sin(2*PI*261.63*t)+0.1*sin(2*PI*329.63*t)+0.1*sin(2*PI*392*t)";
  await runFfmpeg([
    "-f",
    "lavfi",
    "-i",
    `aevalsrc=${chord}:s=48000:d=${MUSIC_SECONDS}`,
    "-c:a",
    "aac",
    "-b:a",
    "96k",
    "-f",
    "mp4",
    fileArg(join(dir, "music.m4a")),
  ]);
}

const seconds = (s: number | undefined) => (s === undefined ? "-" : `${s.toFixed(2)} s`);

/** What is wrong with a node's output, or nothing; then the output as the demo prints it. */
async function checkOutput(spec: DemoNodeSpec, node: AiDemoNode, outputs: Map<string, DemoOutput>, served: (id: string) => Promise<number>): Promise<string[]> {
  if (node.status !== "completed") return [`${node.status}: ${String(node.metadata?.error ?? "no error recorded")}`];
  const o = node.output as Partial<DemoOutput> | null;
  if (!o || typeof o.s3Key !== "string") return ["no output"];
  const problems: string[] = [];
  if (o.type !== spec.media) problems.push(`output is ${String(o.type)}, expected ${spec.media}`);
  if (!(typeof o.size === "number" && o.size > 0)) problems.push(`size ${String(o.size)}`);
  if (spec.media === "video" || spec.media === "audio") {
    if (!(typeof o.duration === "number" && o.duration > 0)) problems.push(`duration ${String(o.duration)}`);
    const expected = spec.duration?.(outputs);
    if (expected && typeof o.duration === "number" && !(Math.abs(o.duration - expected.seconds) <= expected.tolerance)) {
      problems.push(`duration ${o.duration.toFixed(2)} s, expected ${expected.seconds.toFixed(2)} ± ${expected.tolerance} s`);
    }
  }
  if ((spec.media === "video" || spec.media === "image") && !(o.width && o.height)) problems.push("no frame size");
  const bytes = await served(spec.id);
  if (bytes !== o.size) problems.push(`the API serves ${bytes} bytes, the output says ${String(o.size)}`);
  return problems;
}

/** Builds the pipeline, runs it all, checks and prints every node's output. Throws when anything is wrong. */
export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const { apiRoot, log } = options;
  const timeoutMs = options.timeoutMs ?? 15 * 60_000;
  const { call, waitForNodes } = demoApi(apiRoot, options.token);
  const dir = await mkdtemp(join(tmpdir(), "vp-demo-"));
  try {
    const nodes = specs(dir);
    // Every node type, once at least: a new type belongs in the demo too.
    const missing = NODE_TYPES.filter((type) => !nodes.some((n) => n.type === type));
    if (missing.length) throw new Error(`the demo has no ${missing.join(", ")} node`);

    await makeMedia(dir);
    const { pipeline } = await call<{ pipeline: { id: string } }>("POST", "/pipelines", { title: `Demo ${new Date().toISOString()}` });
    log(`pipeline ${pipeline.id}: ${nodes.length} nodes, every node type`);
    options.onPipeline?.(pipeline.id);
    for (const spec of nodes) {
      await call("POST", `/pipelines/${pipeline.id}/nodes`, {
        id: spec.id,
        title: spec.title,
        type: spec.type,
        inputs: spec.inputs ?? {},
        config: spec.config ?? {},
        ...(spec.asset ? { asset: spec.asset } : {}),
        position: spec.position,
      });
      if (spec.upload) {
        await call("PUT", `/pipelines/${pipeline.id}/nodes/${spec.id}/asset`, new Uint8Array(await readFile(spec.upload.file)), {
          "content-type": spec.upload.contentType,
        });
      }
    }
    log("uploaded intro (video), still (image) and music (audio); script and code are text assets");
    const run = await call<{ run_id: string; node_ids: string[] }>("POST", `/pipelines/${pipeline.id}/execute`, {});
    log(`run ${run.run_id}: ${run.node_ids.length} nodes queued in dependency order`);
    const done = await waitForNodes(
      pipeline.id,
      nodes.map((n) => n.id),
      timeoutMs,
      log,
    );

    const served = async (id: string) => {
      // The last byte only: the answer's Content-Range carries the stored file's full size.
      const response = await fetch(`${apiRoot}/pipelines/${pipeline.id}/nodes/${id}/output`, {
        headers: { range: "bytes=0-0", ...(options.token ? { authorization: `Bearer ${options.token}` } : {}) },
      });
      await response.arrayBuffer();
      return Number(/\/(\d+)$/.exec(response.headers.get("content-range") ?? "")?.[1] ?? Number.NaN);
    };
    const outputs = new Map<string, DemoOutput>();
    for (const spec of nodes) {
      const node = done.get(spec.id)!;
      if (node.status === "completed" && node.output) outputs.set(spec.id, node.output as unknown as DemoOutput);
    }
    const lines: string[] = [];
    const failures: string[] = [];
    for (const spec of nodes) {
      const node = done.get(spec.id)!;
      const problems = await checkOutput(spec, node, outputs, served);
      const o = outputs.get(spec.id);
      const kind = spec.type === "asset" ? `asset ${spec.media}` : spec.type;
      const frame = o?.width && o.height ? `  ${o.width}x${o.height}` : "";
      const provider = o?.provider ? `  ${o.provider}` : "";
      const line = `${problems.length ? "FAIL" : "ok  "} ${spec.id.padEnd(10)} ${kind.padEnd(19)} ${seconds(o?.duration).padStart(8)} ${`${o?.size ?? "-"} bytes`.padStart(15)}${frame}${provider}${problems.length ? `  ${problems.join("; ")}` : ""}`;
      lines.push(line);
      log(line);
      if (problems.length) failures.push(`${spec.id}: ${problems.join("; ")}`);
    }
    if (failures.length) throw new Error(`the demo pipeline is not right: ${failures.join(" | ")}`);
    return { pipelineId: pipeline.id, nodes: done, lines, finalKey: outputs.get("captioned")!.s3Key };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
