/**
 * Fault scenario: executor-ai SIGKILLed after HeyGen took its create request and before the answer came back, so
 * the node holds "creating" and no provider job id. The replica that takes the job over cannot find the video
 * by title (HeyGen's list lags), sends the create again with the same Idempotency-Key, and HeyGen answers the
 * first video again: one video is made and paid, and the node completes once with it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeProviders, type FakeProviders, type ServiceProcess } from "@vp/testkit";
import { startFaultInfra, type FaultInfra, type FaultStack, HEYGEN_TALKING_HEAD, until } from "./harness";

const ACK_WAIT_MS = 3000;

let infra: FaultInfra;
let fx: FaultStack;
let fakes: FakeProviders;

beforeAll(async () => {
  fakes = await startFakeProviders({ pollsUntilDone: 1 });
  infra = await startFaultInfra("faults-paid-kill");
  fx = await infra.stack({
    jobAckWaitMs: ACK_WAIT_MS,
    env: {
      ...fakes.env,
      PROVIDER_POLL_INTERVAL_MS: "500",
      PROVIDER_HTTP_TIMEOUT_MS: "2000",
      // JetStream's redelivery after the ack wait hands the job over, not the reconciler.
      STALLED_AFTER_MS: "600000",
    },
  });
  await fx.replica("executor-ai");
});

afterAll(async () => {
  await infra?.destroy();
  await fakes?.close();
});

const startedBy = (jobId: string, attempt: number): ServiceProcess | undefined =>
  fx.processesOf("executor-ai").find((p) => p.logs.some((l) => l.msg === "work started" && l.jobId === jobId && l.attempt === attempt));

describe("executor-ai killed between HeyGen's create and its answer", () => {
  it("the taker re-sends the create with the same Idempotency-Key, HeyGen replays the first video, one is made and the node completes once", async () => {
    const { api } = fx;
    const { pipeline } = await api.ok("POST", "/pipelines", { title: "killed mid-create" });
    const P = pipeline.id as string;
    await api.ok("POST", `/pipelines/${P}/nodes`, {
      id: "th",
      title: "presenter",
      type: "talking-head",
      config: { ...HEYGEN_TALKING_HEAD, script: "Killed while the create was on the wire." },
    });
    fakes.heygen.listLags = true;
    // HeyGen takes the create (the video exists) and the answer never leaves.
    fakes.heygen.fail("create", { kind: "hang" });
    const { job_id: jobId } = await api.ok("POST", `/pipelines/${P}/nodes/th/execute`);

    const victim = await until("attempt 1 started", () => startedBy(jobId, 1));
    await fakes.heygen.waitFor(() => fakes.heygen.creates === 1, 30_000, "the first create taken");
    victim.kill("SIGKILL");
    const before = await api.node(P, "th");
    expect(before.metadata?.providerJob).toMatchObject({ provider: "heygen", phase: "creating" });
    expect(before.metadata?.providerJobId).toBeUndefined();

    const done = await api.waitForStatus(P, "th", ["completed", "failed"], 90_000);
    expect(done.status, JSON.stringify(done.metadata)).toBe("completed");
    const taker = startedBy(jobId, 2);
    expect(taker && taker.pid !== victim.pid, "attempt 2 ran on the other replica").toBe(true);
    expect(taker!.logs.some((l) => l.msg === "HeyGen has no job for the lost create; creating it now" && l.jobId === jobId)).toBe(true);

    // Two create requests with one key, one video: the second was answered with the first one's id.
    const video = [...fakes.heygen.jobs.values()];
    expect(fakes.heygen.createTimes).toHaveLength(2);
    expect(video).toHaveLength(1);
    expect(video[0]!.extra.idempotencyKey).toBe(`vp-${jobId}`);
    expect(done.metadata).toMatchObject({ jobId, attempt: 2, providerJobId: video[0]!.id });
    const completions = fx.stack.services.get("state-writer")!.logs.filter((l) => l.msg === "state committed" && l.jobId === jobId && l.status === "completed");
    expect(completions).toHaveLength(1);
  });
});
