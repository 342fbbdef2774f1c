/**
 * The paid AI providers end to end: the five services as real processes, each
 * provider's base URL pointing at a fake provider of @vp/testkit (a real HTTP server on 127.0.0.1 speaking the
 * provider's documented API and returning real media). No test reaches the internet.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  createTestBus,
  createTestDatabase,
  startFakeProviders,
  startService,
  startStack,
  type FakeProviders,
  type Stack,
  type TestBus,
  type TestDatabase,
} from "@vp/testkit";
import { client, type Client, type Node } from "./helpers";

const exec = promisify(execFile);

let fakes: FakeProviders;
let db: TestDatabase;
let bus: TestBus;
let stack: Stack;
let api: Client;
let scratch: string;

const SCRIPT = "Welcome back. Today we look at loops, and why they make programs shorter.";
/** Ack wait of the job consumers; the provider timeout below stays under it, as the executor's settings require. */
const ACK_WAIT_MS = 5000;
/**
 * Short enough that the hang cases below end quickly, long enough that a fake provider making real media (espeak-ng,
 * ffmpeg) on a loaded 2-core machine answers within it: a happy-path answer that came late would be a timeout.
 */
const PROVIDER_TIMEOUT_MS = 3000;
/** How long a job may keep getting 429s before its node fails (a spent quota). */
const RATE_LIMIT_MAX_WAIT_MS = 12_000;
const HEYGEN_CONFIG = { provider: "heygen", avatarId: "Daisy-inskirt-20220818", voiceId: "2d5b0e6cf36f460aa7fc47e3eee4ba54" };

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "vp-e2e-ai-"));
  fakes = await startFakeProviders({ pollsUntilDone: 2 });
  db = await createTestDatabase();
  bus = await createTestBus({ jobAckWaitMs: ACK_WAIT_MS });
  stack = await startStack({
    databaseAdminUrl: db.adminUrl,
    namespace: bus.topology.namespace,
    storageRoot: join(scratch, "storage"),
    workRoot: join(scratch, "work"),
    env: {
      ...fakes.env,
      JOB_ACK_WAIT_MS: String(ACK_WAIT_MS),
      JOB_MAX_ATTEMPTS: "3",
      PROVIDER_HTTP_TIMEOUT_MS: String(PROVIDER_TIMEOUT_MS),
      PROVIDER_HTTP_RETRIES: "1",
      PROVIDER_POLL_INTERVAL_MS: "100",
      PROVIDER_RATE_LIMIT_MAX_WAIT_MS: String(RATE_LIMIT_MAX_WAIT_MS),
      TALKING_HEAD_CONCURRENCY: "2",
    },
  });
  api = client(stack.baseUrl);
});

afterAll(async () => {
  await stack?.stop();
  await fakes?.close();
  await bus?.cleanup();
  await db?.drop();
  await rm(scratch, { recursive: true, force: true });
});

beforeEach(() => fakes.reset());

async function newPipeline(title: string): Promise<string> {
  return (await api.ok("POST", "/pipelines", { title })).pipeline.id;
}

async function addNode(pipelineId: string, node: Record<string, unknown>) {
  await api.ok("POST", `/pipelines/${pipelineId}/nodes`, node);
}

/** A completed text asset (the script / prompt of an AI node). */
async function textAsset(pipelineId: string, id: string, content: string) {
  await addNode(pipelineId, { id, title: `Text ${id}`, type: "asset", asset: { type: "text", content } });
  await api.ok("POST", `/pipelines/${pipelineId}/nodes/${id}/execute`);
  expect((await api.waitForStatus(pipelineId, id, ["completed", "failed"])).status).toBe("completed");
}

/** A completed image asset (a PNG made by ffmpeg, uploaded through the gateway); `noise` makes a large one. */
async function imageAsset(pipelineId: string, id: string, source = "testsrc2=s=320x180") {
  const png = join(scratch, `${id}.png`);
  await exec("ffmpeg", ["-v", "error", "-y", "-f", "lavfi", "-i", source, "-frames:v", "1", png]);
  await addNode(pipelineId, { id, title: `Image ${id}`, type: "asset", asset: { type: "image" } });
  await api.ok("PUT", `/pipelines/${pipelineId}/nodes/${id}/asset`, new Uint8Array(await readFile(png)), { "content-type": "image/png" });
  await api.ok("POST", `/pipelines/${pipelineId}/nodes/${id}/execute`);
  expect((await api.waitForStatus(pipelineId, id, ["completed", "failed"])).status).toBe("completed");
}

async function execute(pipelineId: string, nodeId: string) {
  const res = await api.call("POST", `/pipelines/${pipelineId}/nodes/${nodeId}/execute`);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
}

/** Waits for a terminal status; the failure message carries the executor's log lines of that node. */
async function finished(pipelineId: string, nodeId: string, timeoutMs = 45_000): Promise<Node> {
  return api.waitForStatus(pipelineId, nodeId, ["completed", "failed"], timeoutMs);
}

function executorLog(nodeId: string): string {
  const lines = [...stack.services.values()].filter((s) => s.name === "executor-ai").flatMap((s) => s.logs);
  return JSON.stringify(lines.filter((l) => l.nodeId === nodeId).map((l) => [l.msg, l.err ?? l.reason ?? l.phase ?? ""]));
}

/** Downloads the output through the gateway and decodes every frame (a playable file, not just a header). */
async function playable(pipelineId: string, nodeId: string) {
  const response = await fetch(`${api.root}/pipelines/${pipelineId}/nodes/${nodeId}/output`, { headers: await api.authHeader() });
  expect(response.status).toBe(200);
  const file = join(scratch, `${pipelineId}-${nodeId}.out`);
  await writeFile(file, Buffer.from(await response.arrayBuffer()));
  const { stdout } = await exec("ffprobe", ["-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0", file]);
  await exec("ffmpeg", ["-v", "error", "-i", file, "-f", "null", "-"]);
  return stdout.trim().split("\n").sort();
}

describe("each provider against its fake", () => {
  it("HeyGen, ElevenLabs, Veo 3 and Runway nodes complete with playable outputs, their cost, and the provider job id", async () => {
    const p = await newPipeline("AI providers");
    await textAsset(p, "script", SCRIPT);
    await imageAsset(p, "frame");
    await addNode(p, { id: "th", title: "Presenter", type: "talking-head", inputs: { script: ["script"] }, config: HEYGEN_CONFIG });
    await addNode(p, {
      id: "vo",
      title: "Narration",
      type: "generate-voiceover",
      inputs: { script: ["script"] },
      config: { provider: "elevenlabs", stability: 0.5 },
    });
    await addNode(p, {
      id: "veo",
      title: "Veo shot",
      type: "generate-animation",
      config: { provider: "veo3", prompt: "a paper boat on a pond", durationSeconds: 8 },
    });
    await addNode(p, {
      id: "rw",
      title: "Runway shot",
      type: "generate-animation",
      inputs: { image: ["frame"] },
      config: { provider: "runway", prompt: "the pattern starts to spin" },
    });
    // A 500 on the ElevenLabs call is retried inside the attempt.
    fakes.elevenlabs.fail("create", { kind: "500" });
    await Promise.all(["th", "vo", "veo", "rw"].map((id) => execute(p, id)));
    const nodes = Object.fromEntries(await Promise.all(["th", "vo", "veo", "rw"].map(async (id) => [id, await finished(p, id)] as const)));
    for (const [id, node] of Object.entries(nodes)) expect(node.status, `${id}: ${JSON.stringify(node.metadata)} ${executorLog(id)}`).toBe("completed");

    const only = <T>(m: Map<string, T>) => {
      expect(m.size).toBe(1);
      return [...m.keys()][0]!;
    };
    const ids = {
      th: only(fakes.heygen.jobs),
      vo: only(fakes.elevenlabs.jobs),
      veo: `models/veo-3.0-generate-001/operations/${only(fakes.veo.jobs)}`,
      rw: only(fakes.runway.jobs),
    };
    const provider = { th: "heygen", vo: "elevenlabs", veo: "veo3", rw: "runway" } as const;
    for (const id of ["th", "vo", "veo", "rw"] as const) {
      const { metadata, output } = nodes[id]!;
      expect(metadata).toMatchObject({ provider: provider[id], providerJobId: ids[id], providerJob: { phase: "created", id: ids[id] }, retries: 0 });
      expect(output).toMatchObject({ provider: provider[id], providerJobId: ids[id] });
      expect(output).not.toHaveProperty("local");
      expect(metadata!.estimatedCost as number).toBeGreaterThan(0);
    }

    // Real cost from each provider's pricing unit (price table read 2026-11-21).
    expect(nodes.th!.output).toMatchObject({ type: "video", videoCodec: "h264", audioCodec: "aac" });
    expect(nodes.th!.metadata!.cost).toBeCloseTo(0.0667 * (nodes.th!.output!.duration as number), 5);
    expect(nodes.vo!.output).toMatchObject({
      type: "audio",
      audioCodec: "mp3",
      contentType: "audio/mpeg",
      characters: SCRIPT.length,
      modelId: "eleven_multilingual_v2",
    });
    expect(nodes.vo!.metadata!.cost).toBeCloseTo((SCRIPT.length / 1000) * 0.1, 6);
    expect(nodes.veo!.output).toMatchObject({ type: "video", modelId: "veo-3.0-generate-001" });
    expect(nodes.veo!.metadata!.cost).toBeCloseTo(2 * 0.4, 6); // the fake renders 2 s
    expect(nodes.rw!.output).toMatchObject({ type: "video", modelId: "gen4_turbo", imageToVideo: true });
    expect(nodes.rw!.metadata!.cost).toBeCloseTo(5 * 5 * 0.01, 6); // 5 s x 5 credits/s x $0.01
    const pipeline = (await api.ok("GET", `/pipelines/${p}`)).pipeline;
    expect(pipeline.metadata.totalCost).toBeCloseTo(
      ["th", "vo", "veo", "rw"].reduce((sum, id) => sum + (nodes[id]!.metadata!.cost as number), 0),
      5,
    );

    expect(await playable(p, "th")).toEqual(["audio", "video"]);
    expect(await playable(p, "vo")).toEqual(["audio"]);
    expect(await playable(p, "veo")).toEqual(["audio", "video"]);
    expect(await playable(p, "rw")).toEqual(["audio", "video"]);
    // Outputs live at the system's keys, never at a provider URL.
    for (const id of ["th", "vo", "veo", "rw"]) expect(nodes[id]!.output!.s3Key).toMatch(new RegExp(`^pipelines/${p}/nodes/${id}/[^/]+/output\\.(mp4|mp3)$`));

    // What the providers were asked for: the script from the text asset, the image as a data URI, the key only where due.
    const heygenJob = [...fakes.heygen.jobs.values()][0]!;
    const heygenRequest = heygenJob.request as { script: string; title: string; callback_id: string };
    expect(heygenRequest).toMatchObject({ type: "avatar", script: SCRIPT, resolution: "720p", aspect_ratio: "16:9" });
    expect(heygenRequest.title).toMatch(/^Presenter \[vp-.+\]$/);
    expect(heygenJob.extra.idempotencyKey).toBe(heygenRequest.callback_id);
    expect(([...fakes.runway.jobs.values()][0]!.request as { promptImage: string }).promptImage).toMatch(/^data:image\/png;base64,iVBOR/);
    expect(fakes.elevenlabs.calls.filter((c) => c.endpoint === "create").map((c) => c.status)).toEqual([500, 200]);
    for (const fake of [fakes.heygen, fakes.veo, fakes.runway]) expect(fake.keyLeaks).toBe(0);
  });
});

describe("rate limits, rejections, hangs and failed jobs", () => {
  it("429 + Retry-After: 3 s delays the next attempt >= 3 s; delays are not failures, so the node completes past JOB_MAX_ATTEMPTS", async () => {
    const p = await newPipeline("AI 429");
    await addNode(p, { id: "th", title: "Rate limited", type: "talking-head", config: { ...HEYGEN_CONFIG, script: SCRIPT } });
    fakes.heygen.fail("create", { kind: "429", retryAfterSeconds: 3 }, { kind: "429", retryAfterSeconds: 1 }, { kind: "429", retryAfterSeconds: 1 });
    await execute(p, "th");
    const node = await finished(p, "th");
    expect(node.status, `${JSON.stringify(node.metadata)} ${executorLog("th")}`).toBe("completed");
    const t = fakes.heygen.createTimes;
    expect(t).toHaveLength(4); // 3 x 429, then the create that made the video: 4 deliveries with JOB_MAX_ATTEMPTS=3
    expect(t[1]! - t[0]!).toBeGreaterThanOrEqual(3000);
    expect(t[2]! - t[1]!).toBeGreaterThanOrEqual(1000);
    expect(fakes.heygen.creates).toBe(1);
    expect(node.metadata).toMatchObject({ attempt: 4, providerJob: { phase: "created", attempt: 4 } });
    expect(node.metadata).not.toHaveProperty("error");
  });

  it("Google's 429 without Retry-After: the delay its RetryInfo states is honoured, and the node completes", async () => {
    const p = await newPipeline("AI 429 RetryInfo");
    await addNode(p, { id: "veo", title: "Rate limited Veo", type: "generate-animation", config: { provider: "veo3", prompt: "waves" } });
    const retryInfo = {
      error: {
        code: 429,
        message: "Resource has been exhausted (e.g. check quota).",
        status: "RESOURCE_EXHAUSTED",
        details: [{ "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: "2s" }],
      },
    };
    fakes.veo.fail("create", { kind: "429", body: retryInfo });
    await execute(p, "veo");
    const node = await finished(p, "veo");
    expect(node.status, executorLog("veo")).toBe("completed");
    const [first, second] = fakes.veo.createTimes;
    // 2 s as stated, not the 30 s default for a 429 that says nothing.
    expect(second! - first!).toBeGreaterThanOrEqual(2000);
    expect(second! - first!).toBeLessThan(10_000);
  });

  it("Google's per-day quota (QuotaFailure) fails the node at once: waiting cannot help", async () => {
    const p = await newPipeline("AI daily quota");
    await addNode(p, { id: "veo", title: "Daily quota", type: "generate-animation", config: { provider: "veo3", prompt: "waves" } });
    const daily = {
      error: {
        code: 429,
        message: "You exceeded your current quota, please check your plan and billing details.",
        status: "RESOURCE_EXHAUSTED",
        details: [
          {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            violations: [
              { quotaMetric: "generativelanguage.googleapis.com/generate_requests_per_model_per_day", quotaId: "GenerateRequestsPerDayPerProjectPerModel" },
            ],
          },
          { "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: "41s" },
        ],
      },
    };
    fakes.veo.fail("create", { kind: "429", body: daily });
    const started = Date.now();
    await execute(p, "veo");
    const node = await finished(p, "veo");
    expect(node.status).toBe("failed");
    expect(Date.now() - started).toBeLessThan(ACK_WAIT_MS);
    expect(node.metadata!.error).toBe(
      "Veo 3 quota exhausted: the per-day quota GenerateRequestsPerDayPerProjectPerModel is spent; it resets at midnight Pacific time (generate video: You exceeded your current quota, please check your plan and billing details.)",
    );
    expect(fakes.veo.creates).toBe(0);
  });

  it("HeyGen, ElevenLabs and Runway answering 429 for longer than the limit: each node fails with the reason instead of waiting for hours", async () => {
    const p = await newPipeline("AI quota spent");
    await addNode(p, { id: "th", title: "HeyGen spent", type: "talking-head", config: { ...HEYGEN_CONFIG, script: SCRIPT } });
    await addNode(p, { id: "vo", title: "ElevenLabs spent", type: "generate-voiceover", config: { provider: "elevenlabs", script: SCRIPT } });
    await addNode(p, { id: "rw", title: "Runway spent", type: "generate-animation", config: { provider: "runway", prompt: "spin", modelId: "gen4.5" } });
    const spent = Array.from({ length: 6 }, () => ({ kind: "429" as const, retryAfterSeconds: 5 }));
    fakes.heygen.fail("create", ...spent);
    fakes.elevenlabs.fail("create", ...spent);
    fakes.runway.fail("create", ...spent);
    const started = Date.now();
    await Promise.all(["th", "vo", "rw"].map((id) => execute(p, id)));
    const label = { th: "HeyGen", vo: "ElevenLabs", rw: "Runway" } as const;
    for (const id of ["th", "vo", "rw"] as const) {
      const node = await finished(p, id);
      expect(node.status, `${id}: ${executorLog(id)}`).toBe("failed");
      expect(node.metadata!.error).toMatch(
        new RegExp(
          `^${label[id]} rate limit on .+ \\(retry after 5 s\\); still refused after \\d+ s \\(the limit is 12 s\\): .+'s quota is likely spent\\. Run the node again when it has been raised or has reset$`,
        ),
      );
    }
    // Bounded: about the limit, not hours; and nothing was created (nothing paid).
    expect(Date.now() - started).toBeLessThan(RATE_LIMIT_MAX_WAIT_MS + 15_000);
    expect([fakes.heygen.creates, fakes.elevenlabs.creates, fakes.runway.creates]).toEqual([0, 0, 0]);
  });

  it("a 400 policy rejection fails the node at once with the provider's own message", async () => {
    const p = await newPipeline("AI 400");
    await addNode(p, { id: "veo", title: "Blocked", type: "generate-animation", config: { provider: "veo3", prompt: "something not allowed" } });
    fakes.veo.fail("create", { kind: "reject", message: "The prompt was blocked by the safety policy (PROHIBITED_CONTENT).", code: "INVALID_ARGUMENT" });
    const started = Date.now();
    await execute(p, "veo");
    const node = await finished(p, "veo");
    // At once: on the first delivery, long before an ack wait would bring the job back.
    expect(Date.now() - started).toBeLessThan(ACK_WAIT_MS);
    expect(fakes.veo.createTimes).toHaveLength(1);
    expect(node.status).toBe("failed");
    expect(node.metadata).toMatchObject({
      error: "Veo 3 rejected the request (400 INVALID_ARGUMENT): The prompt was blocked by the safety policy (PROHIBITED_CONTENT).",
      retries: 0,
      providerJob: { phase: "refused" },
    });
    expect(fakes.veo.creates).toBe(0);
    expect(fakes.veo.calls).toHaveLength(1);
  });

  it("a hang while polling fails the attempt by timeout; the retry resumes the same HeyGen video", async () => {
    const p = await newPipeline("AI hang");
    await addNode(p, { id: "th", title: "Hang", type: "talking-head", config: { ...HEYGEN_CONFIG, script: SCRIPT } });
    fakes.heygen.fail("status", { kind: "hang" });
    await execute(p, "th");
    const node = await finished(p, "th");
    expect(node.status, executorLog("th")).toBe("completed");
    expect(fakes.heygen.creates).toBe(1);
    expect(fakes.heygen.calls.filter((c) => c.endpoint === "status")[0]!.status).toBe("hang");
    expect(node.metadata).toMatchObject({ retries: 1, providerJobId: [...fakes.heygen.jobs.keys()][0] });
  });

  it("a create whose answer never came: HeyGen's video is found by our reference and resumed, not created again", async () => {
    const p = await newPipeline("AI lost create");
    await addNode(p, { id: "th", title: "Lost reply", type: "talking-head", config: { ...HEYGEN_CONFIG, script: SCRIPT } });
    fakes.heygen.fail("create", { kind: "hang" });
    await execute(p, "th");
    const node = await finished(p, "th");
    expect(node.status, executorLog("th")).toBe("completed");
    expect(fakes.heygen.creates).toBe(1);
    expect(fakes.heygen.calls.map((c) => c.endpoint).filter((e) => e !== "status")).toEqual(["create", "lookup", "download"]);
    expect(node.metadata).toMatchObject({ retries: 1, providerJobId: [...fakes.heygen.jobs.keys()][0], providerJob: { phase: "created", attempt: 2 } });
  });

  it("a create whose answer never came, while HeyGen's list does not show the video yet: the create sent again with the job's Idempotency-Key replays the first video", async () => {
    const p = await newPipeline("AI lost create, list lags");
    await addNode(p, { id: "th", title: "Lost reply", type: "talking-head", config: { ...HEYGEN_CONFIG, script: SCRIPT } });
    fakes.heygen.fail("create", { kind: "hang" });
    fakes.heygen.listLags = true;
    await execute(p, "th");
    const node = await finished(p, "th");
    expect(node.status, executorLog("th")).toBe("completed");
    expect(fakes.heygen.creates).toBe(1);
    expect(fakes.heygen.calls.map((c) => c.endpoint).filter((e) => e !== "status")).toEqual(["create", "lookup", "create", "download"]);
    expect(node.metadata).toMatchObject({ retries: 1, providerJobId: [...fakes.heygen.jobs.keys()][0], providerJob: { phase: "created", attempt: 2 } });
  });

  it("an ElevenLabs answer that never came: the audio the request paid for is taken from ElevenLabs' history, not requested again", async () => {
    const p = await newPipeline("AI lost speech");
    await addNode(p, { id: "vo", title: "Lost speech", type: "generate-voiceover", config: { provider: "elevenlabs", script: SCRIPT } });
    fakes.elevenlabs.fail("create", { kind: "hang" });
    await execute(p, "vo");
    const node = await finished(p, "vo");
    expect(node.status, executorLog("vo")).toBe("completed");
    expect(fakes.elevenlabs.creates).toBe(1);
    expect(fakes.elevenlabs.calls.map((c) => c.endpoint)).toEqual(["create", "lookup", "download"]);
    const [item] = fakes.elevenlabs.history;
    expect(node.metadata).toMatchObject({ retries: 1, providerJobId: item!.item.request_id, providerJob: { phase: "created", attempt: 2 } });
    expect(node.output).toMatchObject({ type: "audio", providerJobId: item!.item.request_id, characters: SCRIPT.length });
    expect(await playable(p, "vo")).toEqual(["audio"]);
  });

  it("a lost Veo create answer (no lookup exists) fails the node instead of paying twice", async () => {
    const p = await newPipeline("AI lost veo create");
    await addNode(p, { id: "veo", title: "Lost Veo", type: "generate-animation", config: { provider: "veo3", prompt: "waves" } });
    fakes.veo.fail("create", { kind: "hang" });
    await execute(p, "veo");
    const node = await finished(p, "veo");
    expect(node.status).toBe("failed");
    expect(node.metadata!.error).toMatch(
      /^attempt 1 sent a Veo 3 create request whose answer was lost; not creating another, which could be paid twice\. Check Veo 3 for reference vp-.+ and run the node again$/,
    );
    expect(fakes.veo.creates).toBe(1);
    expect(fakes.veo.createTimes).toHaveLength(1);
  });

  it("an image whose data URI would reach Runway's 5 MB limit fails the node at once with the limit; nothing is sent", async () => {
    const p = await newPipeline("AI big image");
    // About 4 MB of PNG noise: under the 5 MiB any provider takes inline, over what fits a 5 MB data URI.
    await imageAsset(p, "frame", "color=c=black:s=2000x1400,format=rgb24,geq=r='random(1)*255':g='random(2)*255':b='random(3)*255'");
    await addNode(p, { id: "rw", title: "Too big", type: "generate-animation", inputs: { image: ["frame"] }, config: { provider: "runway", prompt: "spin" } });
    await execute(p, "rw");
    const node = await finished(p, "rw");
    expect(node.status).toBe("failed");
    expect(node.metadata!.error).toMatch(
      /^input "image" is \d+ KiB, a 5\.\d MB data URI; Runway takes a data URI under 5 MB \(about 3662 KiB of image\): use a smaller or more compressed image$/,
    );
    expect(fakes.runway.calls).toEqual([]);
  });

  it("a job that fails after polling fails the node with the provider's reason; the paid job id stays on record", async () => {
    const p = await newPipeline("AI failed job");
    await addNode(p, { id: "rw", title: "Bad output", type: "generate-animation", config: { provider: "runway", prompt: "x" } });
    fakes.runway.failNextJob("The output did not pass moderation");
    await execute(p, "rw");
    const node = await finished(p, "rw");
    const id = [...fakes.runway.jobs.keys()][0];
    expect(node.status).toBe("failed");
    expect(node.metadata).toMatchObject({
      error: `Runway job ${id} failed: The output did not pass moderation (INTERNAL.BAD_OUTPUT)`,
      providerJobId: id,
      retries: 0,
    });
    expect(fakes.runway.creates).toBe(1);
  });
});

describe("SIGKILL while polling", () => {
  for (const which of ["heygen", "veo"] as const) {
    it(`${which}: the executor is killed while the job is polled; after a restart the node completes and the fake counts one create`, async () => {
      const fake = fakes[which];
      const p = await newPipeline(`AI crash ${which}`);
      const config = which === "heygen" ? { ...HEYGEN_CONFIG, script: SCRIPT } : { provider: "veo3", prompt: "a lighthouse at night" };
      await addNode(p, { id: "n", title: `Crash ${which}`, type: which === "heygen" ? "talking-head" : "generate-animation", config });
      fake.hold();
      await execute(p, "n");
      await fake.waitFor(() => fake.calls.filter((c) => c.endpoint === "status").length >= 2, 20_000, "polling");
      const jobId = [...fake.jobs.keys()][0]!;
      const recorded = await api.node(p, "n");
      expect(recorded.status).toBe("in_progress");
      // Recorded through the state-writer before the first poll.
      expect(String(recorded.metadata!.providerJobId)).toContain(jobId);

      const executor = stack.services.get("executor-ai")!;
      executor.kill("SIGKILL");
      expect((await executor.exited).signal).toBe("SIGKILL");
      const pollsAtKill = fake.calls.length;
      await new Promise((r) => setTimeout(r, 300));
      expect(fake.calls.length).toBe(pollsAtKill); // nobody polls while the executor is down

      await stack.start("executor-ai");
      fake.release();
      const node = await finished(p, "n", 60_000);
      expect(node.status, executorLog("n")).toBe("completed");
      expect(fake.creates).toBe(1);
      expect(fake.createTimes).toHaveLength(1);
      // The restarted executor found the recorded id and resumed polling it instead of creating.
      const restarted = stack.services.get("executor-ai")!;
      expect(restarted.pid).not.toBe(executor.pid);
      expect(
        restarted.logs.some((l) => l.nodeId === "n" && l.msg === "resuming the provider job of an earlier attempt" && String(l.providerJobId).includes(jobId)),
        `${executorLog("n")} metadata=${JSON.stringify(node.metadata)}`,
      ).toBe(true);
      expect(String(node.output!.providerJobId)).toContain(jobId);
      expect(await playable(p, "n")).toEqual(["audio", "video"]);
    });
  }
});

describe("concurrency per node type across replicas", () => {
  it("6 talking heads, two executor processes, TALKING_HEAD_CONCURRENCY=2: HeyGen never sees more than 2 jobs in flight", async () => {
    const second = await startService("executor-ai", { ...stack.env, HEALTH_PORT: "0" });
    try {
      fakes.heygen.pollsUntilDone = 4;
      const p = await newPipeline("AI concurrency");
      const ids = ["c1", "c2", "c3", "c4", "c5", "c6"];
      for (const id of ids) await addNode(p, { id, title: `Head ${id}`, type: "talking-head", config: { ...HEYGEN_CONFIG, script: `${SCRIPT} (${id})` } });
      await Promise.all(ids.map((id) => execute(p, id)));
      const nodes = await Promise.all(ids.map((id) => finished(p, id, 60_000)));
      for (const n of nodes) expect(n.status, `${n.id}: ${executorLog(n.id)}`).toBe("completed");
      expect(fakes.heygen.creates).toBe(6);
      expect(fakes.heygen.maxInFlight).toBe(2);
    } finally {
      fakes.heygen.pollsUntilDone = 2;
      await second.stop();
    }
  });
});
