/**
 * Regression test of a defect found by the soak: a paid provider job created twice when an executor-ai replica is frozen
 * (SIGSTOP, or any long pause) while its record("creating") request is in flight. Run alone with
 * `npx vitest run --config vitest.soak.config.ts tests/soak/paid-create-freeze.test.ts`.
 *
 * Sequence (services/executor-ai/src/handlers/paid-job.ts, runPaidJob):
 * 1. attempt 1 asks the state-writer to record phase "creating" and is frozen before it reads the answer; the
 *    state-writer commits "creating" (attempt 1 still holds the node) and answers ok into the frozen process's socket;
 * 2. the job's ack wait runs out, JetStream hands the job to the other replica; attempt 2 claims the node, finds phase
 *    "creating" of an earlier attempt, asks HeyGen for a video with the reference in its title, finds none (attempt
 *    1 never sent its create) and creates one ("HeyGen has no job for the lost create; creating it now"), and completes;
 * 3. attempt 1 resumes, reads the stale ok, sends its own create (a second paid video), and only then learns from the
 *    refused "created" record that it was superseded ("attempt superseded; stopping without a result").
 * The fix (paid-job.ts confirmCreating): the "creating" answer must arrive within the lease (a third of the ack wait,
 * WorkContext.leaseMs) before the create is sent; a late answer is confirmed again, and a superseded attempt stops
 * ("the creating record's answer came late; confirming the node is still ours before paying", then "attempt
 * superseded"). What remains is the few instructions between that check and the request leaving the process. Each
 * try below freezes the replica the moment it logs "work started" for a fresh talking head; most land in the window
 * (8 of 10 in the run after the fix, each caught). The assertion is the product's promise: one HeyGen create per job.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import pg from "pg";
import { startFakeProviders, type FakeProviders, type ServiceProcess } from "@vp/testkit";
import { startFaultInfra, type FaultInfra, type FaultStack } from "../faults/harness";

const HEYGEN = { provider: "heygen", avatarId: "Daisy-inskirt-20220818", voiceId: "2d5b0e6cf36f460aa7fc47e3eee4ba54" };
const TRIES = 10;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let infra: FaultInfra;
let fx: FaultStack;
let fakes: FakeProviders;
let ai: ServiceProcess[] = [];

beforeAll(async () => {
  fakes = await startFakeProviders({ pollsUntilDone: 2 });
  infra = await startFaultInfra("paid-freeze");
  fx = await infra.stack({
    jobAckWaitMs: 3000,
    services: ["state-writer", "scheduler", "gateway"],
    // The reconciler stays out of it: JetStream's redelivery after the ack wait hands the job over.
    env: { ...fakes.env, LOG_LEVEL: "info", STALLED_AFTER_MS: "600000", PROVIDER_POLL_INTERVAL_MS: "300", PROVIDER_HTTP_TIMEOUT_MS: "2000" },
  });
  ai = [await fx.replica("executor-ai"), await fx.replica("executor-ai")];
}, 600_000);

afterAll(async () => {
  for (const p of ai) p.kill("SIGCONT");
  await infra?.destroy();
  await fakes?.close();
});

it("an executor-ai frozen with its 'creating' record in flight does not create a second HeyGen job after another replica took over", async () => {
  const { api } = fx;
  const tries: Array<{ jobId: string; phaseWhenFrozen: unknown; creates: number; victim: unknown[] }> = [];
  for (let i = 0; i < TRIES; i++) {
    const { pipeline } = await api.ok("POST", "/pipelines", { title: `paid freeze ${i}` });
    const P = pipeline.id as string;
    await api.ok("POST", `/pipelines/${P}/nodes`, { id: "th", title: "th", type: "talking-head", config: { ...HEYGEN, script: `Frozen presenter ${i}.` } });
    const { job_id: jobId } = await api.ok("POST", `/pipelines/${P}/nodes/th/execute`);
    let victim: ServiceProcess | undefined;
    const deadline = Date.now() + 60_000;
    while (!victim && Date.now() < deadline) {
      victim = ai.find((p) => p.logs.some((l) => l.msg === "work started" && l.jobId === jobId));
      if (!victim) await new Promise((r) => setImmediate(r));
    }
    expect(victim, `attempt 1 of ${jobId} started`).toBeDefined();
    victim!.kill("SIGSTOP");
    await sleep(300);
    const c = new pg.Client({ connectionString: fx.adminUrl });
    await c.connect();
    const phaseWhenFrozen = (await c.query("select metadata from video_production_nodes where pipeline_id = $1 and id = 'th'", [P])).rows[0]?.metadata
      ?.providerJob?.phase;
    await c.end();
    // Resumed well inside the record request's 10 s timeout, so the frozen process reads the answer, not a timeout.
    const done = await api.waitForStatus(P, "th", ["completed", "failed"], 60_000);
    expect(done.status).toBe("completed");
    victim!.kill("SIGCONT");
    await victim!
      .waitForLog(
        (l) => l.jobId === jobId && ["attempt superseded; stopping without a result", "work completed", "job not claimed; skipping"].includes(String(l.msg)),
        30_000,
      )
      .catch(() => undefined);
    await sleep(500);
    const creates = [...fakes.heygen.jobs.values()].filter((j) => String(j.extra.title).includes(jobId)).length;
    tries.push({ jobId, phaseWhenFrozen, creates, victim: victim!.logs.filter((l) => l.jobId === jobId).map((l) => [l.attempt, l.msg]) });
    if (creates > 1) break;
  }
  console.log(`[paid freeze] ${JSON.stringify(tries)}`);
  expect(tries.filter((t) => t.creates !== 1)).toEqual([]);
});
