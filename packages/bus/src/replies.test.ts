import { JetStreamApiError } from "@nats-io/jetstream";
import { afterEach, describe, expect, it } from "vitest";
import { createTestBus, type TestBus } from "../../testkit/src/nats";
import { connectBus } from "./connect";
import { BusUnavailableError } from "./errors";
import { publish } from "./publish";
import { repliesOf, ReplyError } from "./replies";
import { job, testLogger } from "./test-helpers";

describe("the shared reply inbox (JetStream acks and RPC replies)", () => {
  let t: TestBus | undefined;
  afterEach(async () => {
    await t?.cleanup();
    t = undefined;
  });

  it("answers many requests of one turn in order, each with its own ack, and leaves nothing waiting", async () => {
    t = await createTestBus({ logger: testLogger() });
    const message = t.topology.messages.job("merge-videos");
    const messages = Array.from({ length: 50 }, () => job());
    const acks = await Promise.all(messages.map((m) => publish(t!.bus, message, m, { msgId: m.jobId })));
    // Written in the order they were made: the stream's sequences follow the calls.
    expect(acks.map((a) => a.seq)).toEqual(acks.map((_, i) => acks[0]!.seq + i));
    expect(acks.every((a) => a.duplicate === false && a.stream === t!.topology.streams.jobs.name)).toBe(true);
    expect(repliesOf(t.bus.nc).waiting).toBe(0);
  });

  it("rejects a request with no reply at its deadline, and ignores the reply that comes later", async () => {
    t = await createTestBus({ logger: testLogger(), ensure: false });
    const subject = `${t.topology.namespace}.slow`;
    const sub = t.bus.nc.subscribe(subject, { callback: (_err, msg) => void setTimeout(() => msg.respond(new TextEncoder().encode("late")), 300) });
    const started = performance.now();
    const err = await repliesOf(t.bus.nc)
      .request(subject, new Uint8Array(), { timeoutMs: 100 })
      .catch((e) => e);
    expect(err).toBeInstanceOf(ReplyError);
    expect(err.kind).toBe("timeout");
    expect(performance.now() - started).toBeGreaterThanOrEqual(95);
    expect(performance.now() - started).toBeLessThan(250);
    await new Promise((r) => setTimeout(r, 400));
    expect(repliesOf(t.bus.nc).waiting).toBe(0);
    sub.unsubscribe();
  });

  it("says 'no responders' at once when nothing listens, not at the deadline", async () => {
    t = await createTestBus({ logger: testLogger(), ensure: false });
    const started = performance.now();
    const err = await repliesOf(t.bus.nc)
      .request(`${t.topology.namespace}.nobody`, new Uint8Array(), { timeoutMs: 5_000 })
      .catch((e) => e);
    expect(err).toBeInstanceOf(ReplyError);
    expect(err.kind).toBe("no_responders");
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it("a stream's error answer is its JetStreamApiError", async () => {
    t = await createTestBus({ logger: testLogger() });
    const m = job();
    // An expectation the stream refuses: the publish names another stream.
    const { headers } = await import("@nats-io/nats-core");
    const h = headers();
    h.set("Nats-Expected-Stream", "NOT_THIS_ONE");
    const err = await publish(t.bus, t.topology.messages.job("merge-videos"), m, { msgId: m.jobId, headers: h }).catch((e) => e);
    expect(err).toBeInstanceOf(JetStreamApiError);
    expect(err.message).toMatch(/expected stream/i);
  });

  it("rejects every waiting request as soon as the connection closes, and later ones at once", async () => {
    t = await createTestBus({ logger: testLogger(), ensure: false });
    const own = await connectBus({ servers: t.natsUrl, name: "closing", logger: testLogger() });
    const subject = `${t.topology.namespace}.silent`;
    const sub = t.bus.nc.subscribe(subject, { callback: () => {} });
    await t.bus.nc.flush();
    const waiting = repliesOf(own.nc)
      .request(subject, new Uint8Array(), { timeoutMs: 10_000 })
      .catch((e) => e);
    await new Promise((r) => setTimeout(r, 50));
    const started = performance.now();
    await own.nc.close();
    const err = await waiting;
    expect(err).toBeInstanceOf(ReplyError);
    expect(err.kind).toBe("closed");
    expect(performance.now() - started).toBeLessThan(1_000);
    const after = await publish(own, t.topology.messages.job("merge-videos"), job(), { msgId: "x" }).catch((e) => e);
    expect(after).toBeInstanceOf(BusUnavailableError);
    sub.unsubscribe();
  });
});
