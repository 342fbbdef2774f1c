/**
 * The ElevenLabs voiceover never pays twice for one job: an attempt that finds the audio an earlier attempt stored
 * (under that attempt's own output key) takes it, whatever the earlier attempt managed to record. Driven against
 * the ElevenLabs fake with real local storage and a recorder that merges metadata as the state-writer does.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPricing, type NodeMetadata, type SerializedNode } from "@vp/contracts";
import type { ProviderJobRecord, WorkContext } from "@vp/runtime";
import { createLocalStorage } from "@vp/storage";
import { type FakeProviders, startFakeProviders } from "@vp/testkit";
import { createLogger } from "@vp/telemetry";
import { createClients } from "../clients";
import { loadEnv } from "../env";
import { createGenerateVoiceoverWork } from "./generate-voiceover";

let fakes: FakeProviders;
let dir: string;

beforeAll(async () => {
  fakes = await startFakeProviders();
  dir = await mkdtemp(join(tmpdir(), "vp-voiceover-attempts-"));
});

afterAll(async () => {
  await fakes?.close();
  await rm(dir, { recursive: true, force: true });
});

describe("ElevenLabs voiceover across attempts", () => {
  it("an attempt after one that stored the audio and recorded it as created takes that audio instead of paying again", async () => {
    const env = loadEnv({ ...fakes.env, DATABASE_URL: "postgres://unused/unused" });
    const { clients, secrets, urlPolicy } = createClients(env);
    const work = createGenerateVoiceoverWork({
      clients,
      secrets,
      urlPolicy,
      pricing: createPricing(),
      pollIntervalMs: 50,
      maxWaitMs: 10_000,
      httpTimeoutMs: 5000,
      maxDownloadBytes: 10 * 1024 * 1024,
      localTimeoutMs: 30_000,
    });
    const storage = createLocalStorage({ root: join(dir, "storage") });
    let metadata: NodeMetadata = {};
    const node: SerializedNode = {
      id: "vo",
      pipeline_id: "p1",
      title: "Voiceover",
      type: "generate-voiceover",
      inputs: {},
      config: { provider: "elevenlabs", script: "One job. Paid for once." },
      asset: null,
      status: "in_progress",
      metadata,
      output: null,
    };
    const attempt = async (n: number): Promise<WorkContext> => ({
      job: { v: 1, jobId: "job-1", pipelineId: "p1", nodeId: "vo", type: "generate-voiceover", dispatchedAt: new Date().toISOString() },
      attempt: n,
      node: { ...node, metadata },
      inputs: {},
      storage,
      workDir: await mkdtemp(join(dir, `a${n}-`)),
      signal: new AbortController().signal,
      progress: () => undefined,
      logger: createLogger({ service: "voiceover-test", level: "warn" }),
      async recordProviderJob(record: ProviderJobRecord) {
        const { providerJobId, ...job } = record;
        metadata = { ...metadata, providerJob: { ...job, at: new Date().toISOString() }, ...(providerJobId ? { providerJobId } : {}) };
        return metadata;
      },
    });

    const first = await work(await attempt(1));
    expect(fakes.elevenlabs.creates).toBe(1);
    expect(metadata).toMatchObject({ providerJob: { phase: "created" } });
    // The first attempt stored its audio and recorded the request, then its process died before the node completed:
    // the next delivery must find that audio.
    const second = await work(await attempt(2));
    expect(fakes.elevenlabs.creates, "ElevenLabs paid twice for one job").toBe(1);
    expect(second.cost).toBe(first.cost);
    expect((second.output as { providerJobId?: string }).providerJobId).toBe((first.output as { providerJobId?: string }).providerJobId);
    expect(await storage.exists(second.output.s3Key)).toBe(true);
  });
});
