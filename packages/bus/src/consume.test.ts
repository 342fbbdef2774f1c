import { JobMessage } from "@vp/contracts";
import { startTracing, traceIds, withSpan, type Tracing } from "@vp/telemetry";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createTestBus, type TestBus } from "../../testkit/src/nats";
import { consume, type ConsumeContext, type ConsumerHandle, type GiveUpInfo, type InvalidMessageInfo } from "./consume";
import { NonRetryableError, RetryAfterError } from "./errors";
import { publish } from "./publish";
import { delay, job, testLogger, waitFor } from "./test-helpers";

const ACK_WAIT_MS = 1500;
const MAX_ATTEMPTS = 3;

describe("consume (the ack policy) against the real nats-server", () => {
  let t: TestBus;
  let handles: ConsumerHandle[] = [];
  let tracing: Tracing;

  beforeAll(() => {
    tracing = startTracing({ serviceName: "bus-test" });
  });
  afterAll(() => tracing.shutdown());

  async function setup() {
    t = await createTestBus({ jobAckWaitMs: ACK_WAIT_MS, jobMaxAttempts: MAX_ATTEMPTS, logger: testLogger() });
    return t;
  }
  afterEach(async () => {
    await Promise.all(handles.map((h) => h.stop()));
    handles = [];
    await t?.cleanup();
  });

  function run(
    handler: (payload: JobMessage, ctx: ConsumeContext) => Promise<void>,
    extra: {
      onGiveUp?: (p: JobMessage, i: GiveUpInfo) => Promise<void>;
      onInvalid?: (i: InvalidMessageInfo) => void;
      concurrency?: number;
      type?: "merge-videos" | "mix-audio";
    } = {},
  ) {
    const h = consume({
      bus: t.bus,
      consumer: t.topology.consumers.job(extra.type ?? "merge-videos"),
      schema: JobMessage,
      logger: t.logger,
      handler,
      onGiveUp: extra.onGiveUp,
      onInvalid: extra.onInvalid,
      concurrency: extra.concurrency,
      pullExpiresMs: 2_000,
      stopTimeoutMs: 500,
    });
    handles.push(h);
    return h;
  }

  const send = (m: JobMessage) => publish(t.bus, t.topology.messages.job(m.type), m, { msgId: m.jobId });
  const consumerInfo = (type: "merge-videos" | "mix-audio" = "merge-videos") =>
    t.bus.jsm.consumers.info(t.topology.streams.jobs.name, t.topology.consumers.job(type).durable);

  it("acks on success (the work-queue message is gone) and only sees its own filter subject", async () => {
    await setup();
    const seen: { jobId: string; ctx: ConsumeContext }[] = [];
    run(async (p, ctx) => void seen.push({ jobId: p.jobId, ctx }));
    const other = job({}, "mix-audio");
    await send(other);
    const m = job();
    await send(m);
    await waitFor(() => seen.length === 1, 5_000);
    expect(seen[0]!.jobId).toBe(m.jobId);
    expect(seen[0]!.ctx).toMatchObject({ attempt: 1, subject: t.topology.subjects.job("merge-videos") });
    await waitFor(async () => (await consumerInfo()).num_ack_pending === 0 && (await consumerInfo()).num_pending === 0, 3_000);
    const stream = await t.bus.jsm.streams.info(t.topology.streams.jobs.name);
    expect(stream.state.messages).toBe(1); // only the mix-audio job remains
    await delay(300);
    expect(seen).toHaveLength(1);
    const ci = await consumerInfo();
    expect(ci.config.filter_subject).toBe(t.topology.subjects.job("merge-videos"));
    expect(ci.config.max_deliver).toBe(-1);
  });

  it("terms invalid payloads and reports them; they are never redelivered", async () => {
    await setup();
    const invalid: InvalidMessageInfo[] = [];
    let handled = 0;
    run(async () => void handled++, { onInvalid: (i) => void invalid.push(i) });
    const subject = t.topology.subjects.job("merge-videos");
    await t.bus.js.publish(subject, "not json {", { msgID: "bad-1" });
    await t.bus.js.publish(subject, JSON.stringify({ v: 1, jobId: "j" }), { msgID: "bad-2" });
    await waitFor(() => invalid.length === 2, 5_000);
    expect(invalid[0]!.reason).toMatch(/not JSON/);
    expect(invalid[1]!.reason).toMatch(/pipelineId/);
    expect(invalid[1]!.raw).toBe(JSON.stringify({ v: 1, jobId: "j" }));
    await delay(ACK_WAIT_MS + 500);
    expect(invalid).toHaveLength(2);
    expect(handled).toBe(0);
    const ci = await consumerInfo();
    expect(ci.num_ack_pending).toBe(0);
    expect(ci.num_redelivered).toBe(0);
  });

  it("NonRetryableError: onGiveUp once with its message, then term (no redelivery)", async () => {
    await setup();
    const gaveUp: { p: JobMessage; info: GiveUpInfo }[] = [];
    let calls = 0;
    run(
      async () => {
        calls++;
        throw new NonRetryableError("input clip is not a video");
      },
      { onGiveUp: async (p, info) => void gaveUp.push({ p, info }) },
    );
    const m = job();
    await send(m);
    await waitFor(() => gaveUp.length === 1, 5_000);
    expect(gaveUp[0]!.p.jobId).toBe(m.jobId);
    expect(gaveUp[0]!.info.reason).toBe("input clip is not a video");
    expect(gaveUp[0]!.info.error).toBeInstanceOf(NonRetryableError);
    await delay(ACK_WAIT_MS + 500);
    expect(calls).toBe(1);
    expect(gaveUp).toHaveLength(1);
    expect((await consumerInfo()).num_ack_pending).toBe(0);
  });

  it("plain errors are retried with backoff, then given up after maxAttempts with the last error", async () => {
    await setup();
    const attempts: number[] = [];
    const gaveUp: GiveUpInfo[] = [];
    run(
      async (_p, ctx) => {
        attempts.push(ctx.attempt);
        throw new Error(`provider 500 on attempt ${ctx.attempt}`);
      },
      { onGiveUp: async (_p, info) => void gaveUp.push(info) },
    );
    await send(job());
    await waitFor(() => gaveUp.length === 1, 10_000);
    expect(attempts).toEqual([1, 2, 3]);
    expect(gaveUp[0]!.reason).toBe("provider 500 on attempt 3");
    expect(gaveUp[0]!.ctx.attempt).toBe(3);
    await delay(1_000);
    expect(attempts).toHaveLength(3);
  });

  it("RetryAfterError: redelivered after roughly the delay, and not counted toward maxAttempts", async () => {
    await setup();
    const times: number[] = [];
    const gaveUp: GiveUpInfo[] = [];
    let done = false;
    run(
      async (_p, ctx) => {
        times.push(Date.now());
        if (ctx.attempt === 1) throw new RetryAfterError(1_000, "429 from provider");
        if (ctx.attempt <= MAX_ATTEMPTS + 1) throw new RetryAfterError(100, "still 429");
        done = true;
      },
      { onGiveUp: async (_p, info) => void gaveUp.push(info) },
    );
    await send(job());
    await waitFor(() => done, 10_000);
    const firstGap = times[1]! - times[0]!;
    expect(firstGap).toBeGreaterThanOrEqual(900);
    expect(firstGap).toBeLessThan(2_500);
    expect(times).toHaveLength(MAX_ATTEMPTS + 2);
    expect(gaveUp).toHaveLength(0);
  });

  it("a handler running longer than ackWait is not redelivered (working() heartbeats)", async () => {
    await setup();
    const starts: number[] = [];
    let finished = 0;
    run(async (_p, ctx) => {
      starts.push(ctx.attempt);
      await delay(ACK_WAIT_MS * 2.5);
      finished++;
    });
    await send(job());
    await waitFor(() => finished === 1, 10_000);
    await delay(500);
    expect(starts).toEqual([1]);
    const ci = await consumerInfo();
    expect(ci.num_redelivered).toBe(0);
    expect(ci.num_ack_pending).toBe(0);
  });

  it("a delivery that arrives after maxAttempts (earlier ones crashed) goes straight to onGiveUp", async () => {
    await setup();
    await send(job());
    // Simulate a process that died on every delivery: take it and hand it back without an outcome.
    const raw = await t.bus.js.consumers.get(t.topology.streams.jobs.name, t.topology.consumers.job("merge-videos").durable);
    for (let i = 1; i <= MAX_ATTEMPTS; i++) {
      const m = await raw.next({ expires: 2_000 });
      expect(m?.info.deliveryCount).toBe(i);
      m!.nak();
    }
    let handled = 0;
    const gaveUp: GiveUpInfo[] = [];
    run(async () => void handled++, { onGiveUp: async (_p, info) => void gaveUp.push(info) });
    await waitFor(() => gaveUp.length === 1, 5_000);
    expect(gaveUp[0]!.reason).toBe(`gave up after ${MAX_ATTEMPTS} deliveries`);
    expect(gaveUp[0]!.ctx.attempt).toBe(MAX_ATTEMPTS + 1);
    expect(handled).toBe(0);
    await waitFor(async () => (await consumerInfo()).num_ack_pending === 0, 3_000);
  });

  it("an onGiveUp that fails is retried on the next delivery, never dropped", async () => {
    await setup();
    let giveUps = 0;
    run(
      async () => {
        throw new NonRetryableError("bad input");
      },
      {
        onGiveUp: async () => {
          giveUps++;
          if (giveUps === 1) throw new Error("state-writer unreachable");
        },
      },
    );
    await send(job());
    await waitFor(() => giveUps === 2, 8_000);
    await waitFor(async () => (await consumerInfo()).num_ack_pending === 0, 3_000);
  });

  it("keeps at most `concurrency` handlers in flight", async () => {
    await setup();
    let running = 0;
    let max = 0;
    let done = 0;
    run(
      async () => {
        running++;
        max = Math.max(max, running);
        await delay(150);
        running--;
        done++;
      },
      { concurrency: 2 },
    );
    await Promise.all(Array.from({ length: 6 }, () => send(job())));
    await waitFor(() => done === 6, 10_000);
    expect(max).toBe(2);
  });

  it("stop() waits for in-flight work, then hands unfinished messages back to another replica", async () => {
    await setup();
    let aborted = false;
    const first = run(async (_p, ctx) => {
      await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => setTimeout(resolve, 5_000)));
      aborted = ctx.signal.aborted;
    });
    await send(job());
    await waitFor(async () => (await consumerInfo()).num_ack_pending === 1, 5_000);
    await first.stop(); // stopTimeoutMs 500: the handler is still running, so its message is nak'ed
    const stoppedAt = Date.now();
    expect(aborted).toBe(false);
    let receivedAt = 0;
    run(async () => void (receivedAt = Date.now()));
    await waitFor(() => receivedAt > 0, 5_000);
    // Handed back at once, not after the ack wait ran out.
    expect(receivedAt - stoppedAt).toBeLessThan(ACK_WAIT_MS / 2);
  });

  it("stop() lets in-flight work that finishes within the grace period complete and be acknowledged", async () => {
    await setup();
    let finished = false;
    let sawAbort = false;
    const first = run(async (_p, ctx) => {
      await delay(200);
      sawAbort = ctx.signal.aborted;
      finished = true;
    });
    await send(job());
    await waitFor(async () => (await consumerInfo()).num_ack_pending === 1, 5_000);
    await first.stop(); // stopTimeoutMs 500 > the 200 ms of work left
    expect(finished).toBe(true);
    expect(sawAbort).toBe(false);
    const info = await consumerInfo();
    expect(info.num_ack_pending).toBe(0);
    expect(info.num_pending).toBe(0);
    expect(info.num_redelivered).toBe(0);
  });

  it("propagates the trace: the consumer's trace id is the publisher's", async () => {
    await setup();
    const seen: { traceId?: string; logged?: string }[] = [];
    run(async (_p, ctx) => void seen.push({ traceId: traceIds(ctx.traceContext).traceId, logged: traceIds().traceId }));
    const producer = await withSpan("gateway request", {}, async () => {
      await send(job());
      return traceIds();
    });
    await waitFor(() => seen.length === 1, 5_000);
    expect(producer.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(seen[0]!.traceId).toBe(producer.traceId);
    expect(seen[0]!.logged).toBe(producer.traceId);
  });
});
