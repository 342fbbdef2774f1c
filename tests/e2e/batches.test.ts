/**
 * A batch end to end: the five services as processes, local providers only (espeak-ng, Chromium, ffmpeg). A
 * template with a shared uploaded intro and a shared code-typing animation, and per row a script "Hi {{name}}." ->
 * local voiceover and local talking head -> the intro, the animation and the talking head merged -> the voiceover
 * mixed over them, run over ROWS rows. The work no variable reaches is executed once for the whole batch (the first
 * row makes it; every other row takes it from the cache), every row's video lasts exactly its parts, each row speaks
 * its own script for its own length, the batch's cost saved is the shared work's cost in every row after the first,
 * and the zip holds one file per row.
 */
import { execFile } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { codeTiming, resolveProps } from "@vp/code-animation";
import { makeTestClip } from "@vp/media";
import { startTestStack, type TestStack } from "@vp/testkit";
import { client, ffprobeDuration, type Client } from "./helpers";

const exec = promisify(execFile);

/** Rows in one batch (the product's target size). */
const ROWS = 50;
/** Fifty different names, two to eleven letters long: each row's script, and so its voice, has its own length. */
const NAMES = [
  ...["Al", "Bo", "Ed", "Jo", "Cy", "Ada", "Ben", "Eve", "Kim", "Ray", "Alan", "Anna", "Ivan", "Omar", "Yuki"],
  ...["Grace", "Linus", "Ellen", "Barry", "Sofia", "Dennis", "Edsger", "Hannah", "Ingrid", "Jordan"],
  ...["Barbara", "Frances", "Douglas", "Leonard", "Tatiana", "Margaret", "Jennifer", "Florence", "Benedict", "Clarissa"],
  ...["Katherine", "Guglielmo", "Alexandra", "Annabelle", "Sebastian", "Maximilian", "Wilhelmina", "Evangeline"],
  ...["Christabel", "Fitzgerald", "Jacqueline", "Theodosia", "Christopher", "Bartholomew", "Constantine"],
];
/** The smallest 16:9 frame the local talking head renders (128 px high); every part is made at it. */
const FRAME = { width: 228, height: 128 };
/** The intro's and the animation's rate, so the merge (at its first segment's rate) encodes few frames. */
const FPS = 10;
const INTRO_SECONDS = 1;
const CODE = 'git clone "$REPO" && npm ci && npm test';
const CODE_CONFIG = { code: CODE, language: "bash", typingSpeed: 40, ...FRAME, fps: FPS };
/** What a compute second costs on the executors here, so the shared animation's work has a price. */
const USD_PER_COMPUTE_SECOND = 0.001;
const SHARED = ["intro", "code"];
const PER_ROW = ["script", "voice", "head", "merged", "final"];
/** The local talking head holds its card this long after the voice ends. */
const HEAD_TAIL_SECONDS = 0.3;
/** Container durations of encoded media differ from the sum of their parts by a frame or an audio packet. */
const TOLERANCE_SECONDS = 0.15;

let fixture: TestStack;
let api: Client;
let scratch: string;

beforeAll(async () => {
  fixture = await startTestStack({
    prefix: "vp-e2e-batches-",
    jobAckWaitMs: 5000,
    // The composition is bundled while the template is built (an image carries it prebuilt), not in the first row.
    env: { HEYGEN_API_KEY: "", ELEVENLABS_API_KEY: "", FFMPEG_COST_PER_CPU_SECOND_USD: String(USD_PER_COMPUTE_SECOND), RENDER_CODE_PREPARE_AT_START: "true" },
  });
  ({ scratch } = fixture);
  api = client(fixture.stack.baseUrl);
});

afterAll(async () => {
  await fixture?.cleanup();
});

type ApiNode = { id: string; status: string; metadata: Record<string, any> | null; output: Record<string, any> | null };

const add = (P: string, node: Record<string, unknown>) => api.ok("POST", `/pipelines/${P}/nodes`, { title: String(node.id), ...node });

async function download(path: string, file: string): Promise<string> {
  const res = await fetch(`${fixture.stack.baseUrl}${path}`, { headers: await api.authHeader() });
  expect(res.status, path).toBe(200);
  const target = join(scratch, file);
  await writeFile(target, Buffer.from(await res.arrayBuffer()));
  return target;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** `work` over `items`, at most `limit` at a time, answers in the items' order (the reads after the batch, kept short). */
async function inParallel<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await work(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

describe("batches", () => {
  it(`runs one template over ${ROWS} rows: shared intro and code animation once, a talking head per row, a zip of them all`, { timeout: 420_000 }, async () => {
    const { pipeline } = await api.ok("POST", "/pipelines", { title: "Welcome videos" });
    const P = pipeline.id as string;
    await api.ok("PUT", `/pipelines/${P}/variables`, { variables: [{ name: "name", type: "text", description: "who is welcomed" }] });
    const introPath = join(scratch, "intro.mp4");
    await makeTestClip({ ...FRAME, fps: FPS, audio: true, durationSeconds: INTRO_SECONDS, path: introPath });
    await add(P, { id: "intro", type: "asset", asset: { type: "video" } });
    await api.ok("PUT", `/pipelines/${P}/nodes/intro/asset`, new Uint8Array(await readFile(introPath)), { "content-type": "video/mp4" });
    await add(P, { id: "code", type: "render-code", config: CODE_CONFIG });
    await add(P, { id: "script", type: "asset", asset: { type: "text", content: "Hi {{name}}." } });
    await add(P, { id: "voice", type: "generate-voiceover", inputs: { script: ["script"] }, config: { provider: "local" } });
    await add(P, { id: "head", type: "talking-head", inputs: { script: ["script"] }, config: { provider: "local", ...FRAME } });
    await add(P, { id: "merged", type: "merge-videos", inputs: { segments: ["intro", "code", "head"] } });
    // The voiceover narrates from the end of the intro; the talking head's own voice stays underneath.
    await add(P, {
      id: "final",
      type: "mix-audio",
      inputs: { video: ["merged"], audio: ["voice"] },
      config: { mode: "duck", originalGain: 0.4, startSeconds: INTRO_SECONDS },
    });

    const rows = NAMES.slice(0, ROWS).map((name) => ({ name }));
    expect(new Set(rows.map((r) => r.name)).size).toBe(ROWS);
    const dry = await api.ok("POST", `/pipelines/${P}/batches`, { rows, dryRun: true });
    expect(dry.estimate.sharedNodeIds.sort()).toEqual([...SHARED].sort());
    // The estimate prices provider work (the voiceovers and talking heads, once per row); compute is priced by what
    // it really took, so the shared intro and animation are estimated at 0 and their saving is seen only after the run.
    expect(dry.estimate.perRow).toBeGreaterThan(0);
    expect(dry.estimate.saved).toBeCloseTo(dry.estimate.shared * (ROWS - 1), 6);
    expect(dry.estimate.total).toBeCloseTo(dry.estimate.shared + dry.estimate.perRow * ROWS, 5);

    const started = Date.now();
    const { batch: created } = await api.ok("POST", `/pipelines/${P}/batches`, { rows, concurrency: 4, outputNodeId: "final" });
    let batch = created;
    while (batch.finishedAt === null) {
      expect(Date.now() - started, JSON.stringify(batch.counts)).toBeLessThan(360_000);
      await new Promise((r) => setTimeout(r, 1000));
      batch = (await api.ok("GET", `/batches/${created.id}`)).batch;
    }
    const errors = batch.rows.filter((r: any) => r.error).map((r: any) => `${r.index}: ${r.error}`);
    expect(batch.status, errors.join("; ")).toBe("completed");
    expect(batch.counts).toEqual({ waiting: 0, running: 0, completed: ROWS, failed: 0, cancelled: 0 });
    expect(batch.rows.map((r: any) => r.values.name)).toEqual(rows.map((r) => r.name));

    // Every row's own pipeline, read node by node: in its run, each node was executed or completed from the cache.
    const runs: Array<{ created_at: string; finished_at: string; metadata: Record<string, any> }> = [];
    const executedIn: Record<string, number[]> = {};
    const cachedIn: Record<string, number[]> = {};
    const byRow: Array<Record<string, ApiNode>> = [];
    const reads = await inParallel(batch.rows, 8, async (row: any) => ({
      nodes: (await api.ok("GET", `/pipelines/${row.pipelineId}/nodes`)).nodes as ApiNode[],
      run: (await api.ok("GET", `/pipelines/${row.pipelineId}/runs`)).runs.find((r: any) => r.id === row.runId),
    }));
    for (const [i, row] of batch.rows.entries()) {
      const { nodes, run } = reads[i]!;
      expect(nodes.map((n) => n.id).sort()).toEqual([...SHARED, ...PER_ROW].sort());
      for (const n of nodes) {
        expect(n.status, `row ${row.index} ${n.id}`).toBe("completed");
        expect(n.metadata?.runId, `row ${row.index} ${n.id} done by the row's run`).toBe(row.runId);
        const bucket = n.metadata?.cached === true ? cachedIn : executedIn;
        (bucket[n.id] ??= []).push(row.index);
      }
      byRow.push(Object.fromEntries(nodes.map((n) => [n.id, n])));
      runs.push(run);
    }
    const first = batch.rows[0].index;
    for (const id of SHARED) {
      expect(executedIn[id], `${id} executed`).toEqual([first]);
      expect(cachedIn[id]?.length ?? 0, `${id} from the cache`).toBe(ROWS - 1);
    }
    for (const id of PER_ROW) {
      expect(executedIn[id]?.length ?? 0, `${id} executed`).toBe(ROWS);
      expect(cachedIn[id], `${id} never from the cache`).toBeUndefined();
    }
    // Each run's own summary says the same: the first made all seven nodes, the others five and took two.
    expect(runs[0]!.metadata).toMatchObject({ executed: SHARED.length + PER_ROW.length, cached: 0 });
    for (const run of runs.slice(1)) expect(run.metadata).toMatchObject({ executed: PER_ROW.length, cached: SHARED.length });
    // The first row ran alone: every other row's run started after its run had ended.
    for (const run of runs.slice(1)) expect(Date.parse(run.created_at)).toBeGreaterThanOrEqual(Date.parse(runs[0]!.finished_at));

    // Each row speaks its own script, and its voice and talking head last as long as that script takes to say.
    const scripts = await inParallel(batch.rows, 8, async (row: any) =>
      readFile(await download(`/v1/video_production/pipelines/${row.pipelineId}/nodes/script/output`, `script-${row.index}.txt`), "utf8"),
    );
    expect(scripts).toEqual(rows.map((r) => `Hi ${r.name}.`));
    const voices = byRow.map((n) => n.voice!.output!.duration as number);
    const heads = byRow.map((n) => n.head!.output!.duration as number);
    for (const [i, head] of heads.entries()) expect(head, `row ${i + 1}: talking head vs its voice`).toBeCloseTo(voices[i]! + HEAD_TAIL_SECONDS, 1);
    expect(new Set(voices).size, `voice lengths ${voices.join(", ")}`).toBeGreaterThan(ROWS * 0.8);
    const shortest = voices.slice(0, 10);
    const longest = voices.slice(-10);
    expect(mean(longest), "the longest names are said for longer than the shortest").toBeGreaterThan(mean(shortest) + 0.2);

    // The shared parts: the intro as uploaded, the animation as long as its code takes to type (known before rendering).
    const made = byRow[0]!;
    const codeSeconds = codeTiming(resolveProps(CODE_CONFIG)).durationSeconds;
    expect(made.intro!.output!.duration).toBeCloseTo(INTRO_SECONDS, 1);
    expect(made.code!.output!.duration).toBeCloseTo(codeSeconds, 1);
    for (const nodes of byRow) for (const id of SHARED) expect(nodes[id]!.output!.s3Key, id).toBe(made[id]!.output!.s3Key);

    // Each row's final video: intro + animation + its own talking head, every frame decodable.
    for (const row of batch.rows) expect(row.output).toEqual({ nodeId: "final", url: `/v1/video_production/pipelines/${row.pipelineId}/nodes/final/output` });
    const finals = await inParallel(batch.rows, 4, async (row: any) => ffprobeDuration(await download(row.output.url, `final-${row.index}.mp4`)));
    for (const [i, row] of batch.rows.entries()) {
      const expected = INTRO_SECONDS + codeSeconds + heads[i]!;
      const duration = finals[i]!;
      expect(Math.abs(duration - expected), `row ${row.index}: ${duration} s, its parts ${expected} s`).toBeLessThan(TOLERANCE_SECONDS);
    }
    await exec("ffmpeg", ["-v", "error", "-xerror", "-i", join(scratch, `final-${batch.rows.at(-1).index}.mp4`), "-f", "null", "-"]);

    // Cost: every row pays its own work; saved: the shared work's cost, taken from the cache in every row after the first.
    const sharedCost = SHARED.reduce((sum, id) => sum + made[id]!.metadata!.cost, 0);
    expect(made.code!.metadata!.cost, "the animation's rendering has a price").toBeGreaterThan(0);
    for (const [i, row] of batch.rows.entries()) {
      const own = PER_ROW.reduce((sum, id) => sum + byRow[i]![id]!.metadata!.cost, 0);
      expect(row.cost, `row ${row.index} cost`).toBeCloseTo(i === 0 ? own + sharedCost : own, 6);
      expect(row.costSaved, `row ${row.index} cost saved`).toBeCloseTo(i === 0 ? 0 : sharedCost, 6);
      if (i > 0) for (const id of SHARED) expect(byRow[i]![id]!.metadata!.costSaved, `row ${row.index} ${id}`).toBe(made[id]!.metadata!.cost);
    }
    expect(batch.cost).toBeCloseTo(
      batch.rows.reduce((sum: number, r: any) => sum + r.cost, 0),
      6,
    );
    expect(batch.costSaved).toBeCloseTo(sharedCost * (ROWS - 1), 6);

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
