import { JobMessage } from "@vp/contracts";
import { afterEach, describe, expect, it } from "vitest";
import { createTestBus, type TestBus } from "../../testkit/src/nats";
import { connectBus } from "./connect";
import { BusUnavailableError, InvalidPayloadError } from "./errors";
import { publish } from "./publish";
import { ensureTopology } from "./topology";
import { job, testLogger } from "./test-helpers";

describe("publish and ensureTopology", () => {
  let t: TestBus | undefined;
  afterEach(async () => {
    await t?.cleanup();
    t = undefined;
  });

  it("dedupes by msgId inside the duplicate window", async () => {
    t = await createTestBus({ logger: testLogger() });
    const m = job();
    const message = t.topology.messages.job("merge-videos");
    const first = await publish(t.bus, message, m, { msgId: m.jobId });
    const second = await publish(t.bus, message, m, { msgId: m.jobId });
    expect(first.duplicate).toBe(false);
    expect(second.duplicate).toBe(true);
    expect(second.seq).toBe(first.seq);
    const info = await t.bus.jsm.streams.info(t.topology.streams.jobs.name);
    expect(info.state.messages).toBe(1);
  });

  it("refuses an invalid payload before sending anything (a producer bug)", async () => {
    t = await createTestBus({ logger: testLogger() });
    const bad = { ...job(), pipelineId: "has spaces" };
    await expect(publish(t.bus, t.topology.messages.job("merge-videos"), bad, { msgId: "x" })).rejects.toBeInstanceOf(InvalidPayloadError);
    const info = await t.bus.jsm.streams.info(t.topology.streams.jobs.name);
    expect(info.state.messages).toBe(0);
  });

  it("maps a subject no stream listens on to BusUnavailableError", async () => {
    t = await createTestBus({ logger: testLogger() });
    const nowhere = { subject: `${t.topology.namespace}.nowhere`, schema: JobMessage };
    const err = await publish(t.bus, nowhere, job(), { msgId: "y", timeoutMs: 1_000 }).catch((e) => e);
    expect(err).toBeInstanceOf(BusUnavailableError);
  });

  it("ensureTopology is idempotent, also run concurrently from two connections, and updates changed specs", async () => {
    t = await createTestBus({ logger: testLogger(), ensure: false });
    const other = await connectBus({ servers: t.natsUrl, name: "second-process", logger: testLogger() });
    try {
      await Promise.all([ensureTopology(t.bus, t.topology), ensureTopology(other, t.topology)]);
      await ensureTopology(t.bus, t.topology);
      const jobs = await t.bus.jsm.streams.info(t.topology.streams.jobs.name);
      expect(jobs.config).toMatchObject({ retention: "workqueue", storage: "file", subjects: t.topology.streams.jobs.subjects, duplicate_window: 120e9 });
      const events = await t.bus.jsm.streams.info(t.topology.streams.events.name);
      expect(events.config).toMatchObject({ retention: "limits", max_age: 24 * 3600 * 1e9 });
      const spec = t.topology.consumers.job("talking-head");
      const ci = await t.bus.jsm.consumers.info(spec.stream, spec.durable);
      expect(ci.config).toMatchObject({ ack_policy: "explicit", max_deliver: -1, filter_subject: spec.filterSubject, ack_wait: spec.ackWaitMs * 1e6 });
      expect(ci.config.filter_subjects ?? []).toEqual([]);

      const { createTopology } = await import("@vp/contracts");
      const changed = createTopology({ namespace: t.topology.namespace, jobAckWaitMs: 45_000, jobConcurrency: { "talking-head": 3 } });
      await ensureTopology(t.bus, changed);
      const updated = await t.bus.jsm.consumers.info(spec.stream, spec.durable);
      expect(updated.config).toMatchObject({ ack_wait: 45_000 * 1e6, max_ack_pending: 3 });
    } finally {
      await other.close();
    }
  });

  it("ensureTopology can be limited to some consumers (an executor's own types)", async () => {
    t = await createTestBus({ logger: testLogger(), ensure: false });
    const mine = t.topology.consumers.job("mix-audio");
    await ensureTopology(t.bus, t.topology, { consumers: [mine] });
    const names: string[] = [];
    for await (const ci of t.bus.jsm.consumers.list(t.topology.streams.jobs.name)) names.push(ci.name);
    expect(names).toEqual([mine.durable]);
  });

  it("says clearly when NATS is unreachable", async () => {
    const err = await connectBus({ servers: "nats://127.0.0.1:1", name: "nowhere", logger: testLogger() }).catch((e) => e);
    expect(err).toBeInstanceOf(BusUnavailableError);
    expect(err.message).toMatch(/^NATS is not reachable at nats:\/\/127\.0\.0\.1:1: /);
  });
});
