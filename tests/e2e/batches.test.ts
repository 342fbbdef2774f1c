/**
 * A batch end to end: the five services as processes, local providers only (espeak-ng), ffmpeg. A template with a
 * shared uploaded intro, a shared background clip and a shared outro (voiceover -> mix), and per row "Hello {{name}}"
 * -> local voiceover -> mix onto the background -> merge with the intro and the outro, run over ROWS rows. The work
 * no row changes is executed once for the whole batch (the first row makes it; every other row takes it from the
 * cache), every row's video plays for a plausible time, the voices differ, and the zip holds one file per row.
 */
import { execFile } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeTestClip, type TestClipOptions } from "@vp/media";
import { startTestStack, type TestStack } from "@vp/testkit";
import { client, ffprobeDuration, type Client } from "./helpers";

const exec = promisify(execFile);

/** Rows in one batch (the product's target size). */
const ROWS = 50;
const FIRST_NAMES = [
  "Ada",
  "Grace Hopper",
  "Alan",
  "Katherine Johnson",
  "Linus",
  "Margaret Hamilton",
  "Edsger",
  "Barbara Liskov",
  "Dennis",
  "Frances Elizabeth Allen",
];
/** A different name per row, of different lengths (so are the voices). */
const nameOf = (i: number) => `${FIRST_NAMES[i % FIRST_NAMES.length]}${i >= FIRST_NAMES.length ? ` number ${i + 1}` : ""}`;
const SHARED = ["intro", "background", "outro_voice", "outro"];
const PER_ROW = ["script", "voice", "scene", "final"];
const INTRO_SECONDS = 1;
const OUTRO_BACKGROUND_SECONDS = 4;

let fixture: TestStack;
let api: Client;
let scratch: string;

beforeAll(async () => {
  fixture = await startTestStack({ prefix: "vp-e2e-batches-", jobAckWaitMs: 5000, env: { HEYGEN_API_KEY: "", ELEVENLABS_API_KEY: "" } });
  ({ scratch } = fixture);
  api = client(fixture.stack.baseUrl);
});

afterAll(async () => {
  await fixture?.cleanup();
});

type ApiNode = { id: string; status: string; metadata: Record<string, any> | null; output: Record<string, any> | null };

const add = (P: string, node: Record<string, unknown>) => api.ok("POST", `/pipelines/${P}/nodes`, { title: String(node.id), ...node });

async function clipAsset(P: string, id: string, clip: Omit<TestClipOptions, "path">) {
  const path = join(scratch, `${id}.mp4`);
  await makeTestClip({ ...clip, path });
  await add(P, { id, type: "asset", asset: { type: "video" } });
  await api.ok("PUT", `/pipelines/${P}/nodes/${id}/asset`, new Uint8Array(await readFile(path)), { "content-type": "video/mp4" });
}

async function download(path: string, file: string): Promise<string> {
  const res = await fetch(`${fixture.stack.baseUrl}${path}`, { headers: await api.authHeader() });
  expect(res.status, path).toBe(200);
  const target = join(scratch, file);
  await writeFile(target, Buffer.from(await res.arrayBuffer()));
  return target;
}

describe("batches", () => {
  it(`runs one template over ${ROWS} rows: shared work once, a video per row, a zip of them all`, { timeout: 300_000 }, async () => {
    const { pipeline } = await api.ok("POST", "/pipelines", { title: "Welcome videos" });
    const P = pipeline.id as string;
    await api.ok("PUT", `/pipelines/${P}/variables`, { variables: [{ name: "name", type: "text", description: "who is welcomed" }] });
    const clip = { width: 640, height: 360, fps: 25, audio: true };
    await clipAsset(P, "intro", { ...clip, durationSeconds: INTRO_SECONDS });
    await clipAsset(P, "background", { ...clip, durationSeconds: OUTRO_BACKGROUND_SECONDS });
    await add(P, { id: "outro_voice", type: "generate-voiceover", config: { provider: "local", script: "Thanks for watching." } });
    await add(P, { id: "outro", type: "mix-audio", inputs: { video: ["background"], audio: ["outro_voice"] } });
    await add(P, { id: "script", type: "asset", asset: { type: "text", content: "Hello {{name}}, welcome to the team." } });
    await add(P, { id: "voice", type: "generate-voiceover", inputs: { script: ["script"] }, config: { provider: "local" } });
    await add(P, { id: "scene", type: "mix-audio", inputs: { video: ["background"], audio: ["voice"] } });
    await add(P, { id: "final", type: "merge-videos", inputs: { segments: ["intro", "scene", "outro"] } });

    const rows = Array.from({ length: ROWS }, (_, i) => ({ name: nameOf(i) }));
    expect(rows).toHaveLength(ROWS);
    const dry = await api.ok("POST", `/pipelines/${P}/batches`, { rows, dryRun: true });
    expect(dry.estimate.sharedNodeIds.sort()).toEqual([...SHARED].sort());
    expect(dry.estimate.saved).toBeGreaterThan(0);

    const started = Date.now();
    const { batch: created } = await api.ok("POST", `/pipelines/${P}/batches`, { rows, concurrency: 4, outputNodeId: "final" });
    let batch = created;
    while (batch.finishedAt === null) {
      expect(Date.now() - started, JSON.stringify(batch.counts)).toBeLessThan(240_000);
      await new Promise((r) => setTimeout(r, 1000));
      batch = (await api.ok("GET", `/batches/${created.id}`)).batch;
    }
    const errors = batch.rows.filter((r: any) => r.error).map((r: any) => `${r.index}: ${r.error}`);
    expect(batch.status, errors.join("; ")).toBe("completed");
    expect(batch.counts).toEqual({ waiting: 0, running: 0, completed: ROWS, failed: 0, cancelled: 0 });

    // Every row's own pipeline: the shared nodes executed in exactly one row (the first), from the cache in the rest.
    const runs: Array<{ created_at: string; finished_at: string }> = [];
    const executed: Record<string, number> = {};
    const fromCache: Record<string, number> = {};
    const voices: number[] = [];
    const scripts: string[] = [];
    for (const row of batch.rows) {
      const nodes: ApiNode[] = (await api.ok("GET", `/pipelines/${row.pipelineId}/nodes`)).nodes;
      for (const n of nodes) {
        expect(n.status, `row ${row.index} ${n.id}`).toBe("completed");
        const bucket = n.metadata?.cached === true ? fromCache : executed;
        bucket[n.id] = (bucket[n.id] ?? 0) + 1;
      }
      const run = (await api.ok("GET", `/pipelines/${row.pipelineId}/runs`)).runs.find((r: any) => r.id === row.runId);
      runs.push(run);
      expect(run.metadata).toMatchObject({ counts: { completed: 8 } });
      voices.push(nodes.find((n) => n.id === "voice")!.output!.duration);
      scripts.push(await readFile(await download(`/v1/video_production/pipelines/${row.pipelineId}/nodes/script/output`, `script-${row.index}.txt`), "utf8"));
    }
    for (const id of SHARED) {
      expect(executed[id], `${id} executed`).toBe(1);
      expect(fromCache[id], `${id} from the cache`).toBe(ROWS - 1);
    }
    for (const id of PER_ROW) expect(executed[id], `${id} executed`).toBe(ROWS);
    // The first row ran alone: every other row's run started after its run had ended.
    for (const run of runs.slice(1)) expect(Date.parse(run.created_at)).toBeGreaterThanOrEqual(Date.parse(runs[0]!.finished_at));

    expect(scripts).toEqual(rows.map((r) => `Hello ${r.name}, welcome to the team.`));
    expect(new Set(voices).size).toBeGreaterThan(ROWS / 2);
    expect(Math.max(...voices)).toBeGreaterThan(Math.min(...voices) + 0.3);

    // Cost: every row's own voiceover; saved: the shared outro voiceover, taken from the cache in ROWS - 1 rows.
    expect(batch.cost).toBeGreaterThan(0);
    expect(batch.costSaved).toBeGreaterThan(0);
    const outroCost = (await api.ok("GET", `/pipelines/${batch.rows[0].pipelineId}/nodes/outro_voice`)).node.metadata.cost;
    expect(batch.costSaved).toBeCloseTo(outroCost * (ROWS - 1), 6);

    // Each row's final video: intro, its scene, the outro; it plays (every frame decodes) for a plausible time.
    for (const row of batch.rows) {
      expect(row.output).toEqual({ nodeId: "final", url: `/v1/video_production/pipelines/${row.pipelineId}/nodes/final/output` });
      const file = await download(row.output.url, `final-${row.index}.mp4`);
      const duration = await ffprobeDuration(file);
      expect(duration, `row ${row.index}`).toBeGreaterThan(INTRO_SECONDS + 1);
      expect(duration, `row ${row.index}`).toBeLessThan(INTRO_SECONDS + 3 * OUTRO_BACKGROUND_SECONDS + 1);
    }
    await exec("ffmpeg", ["-v", "error", "-i", join(scratch, "final-1.mp4"), "-f", "null", "-"]);

    // The zip: one file per row, named by its index.
    const zip = await download(`/v1/video_production/batches/${created.id}/outputs.zip`, "outputs.zip");
    const { stdout } = await exec("zipinfo", ["-1", zip]);
    expect(stdout.trim().split("\n")).toEqual(batch.rows.map((r: any) => `row-${String(r.index).padStart(3, "0")}.mp4`));

    // Row pipelines stay out of the pipeline list; the batch is listed on its template.
    const listed = (await api.ok("GET", "/pipelines?per=100")).pipelines.map((p: any) => p.id);
    expect(listed).toEqual([P]);
    expect((await api.ok("GET", `/pipelines/${P}/batches`)).batches.map((b: any) => b.id)).toEqual([created.id]);
  });
});
