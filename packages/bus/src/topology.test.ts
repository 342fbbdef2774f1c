import { afterEach, describe, expect, it } from "vitest";
import { createTestBus, type TestBus } from "../../testkit/src/nats";
import { ensureTopology } from "./topology";
import { delay, testLogger } from "./test-helpers";

describe("ensureTopology without the right to create streams", () => {
  let t: TestBus | undefined;
  afterEach(async () => {
    await t?.cleanup();
    t = undefined;
  });

  it('streams: "expect" creates no stream: it waits until the stream manager created them all, then creates its own consumers', async () => {
    t = await createTestBus({ ensure: false, logger: testLogger() });
    const { bus, topology } = t;
    const mine = topology.consumers.job("merge-videos");
    let done = false;
    const waiting = ensureTopology(bus, topology, { consumers: [mine], streams: "expect" }).then(() => (done = true));
    await delay(500);
    expect(done).toBe(false);
    const names: string[] = [];
    for await (const name of bus.jsm.streams.names()) if (name.startsWith(`${topology.namespace}_`)) names.push(name);
    expect(names).toEqual([]);
    // The manager (the scheduler in production) creates the streams and its own consumers only.
    await ensureTopology(bus, topology, { consumers: [] });
    await waiting;
    expect(done).toBe(true);
    expect((await bus.jsm.consumers.info(mine.stream, mine.durable)).config.filter_subject).toBe(mine.filterSubject);
  });

  it('an "expect" wait ends with an error when its signal aborts (shutdown during start-up)', async () => {
    t = await createTestBus({ ensure: false, logger: testLogger() });
    const stop = new AbortController();
    const waiting = ensureTopology(t.bus, t.topology, { consumers: [], streams: "expect", signal: stop.signal });
    await delay(200);
    stop.abort();
    await expect(waiting).rejects.toThrow(`stopped while waiting for stream ${t.topology.streams.commands.name}`);
  });
});

describe("stream replicas on a single server", () => {
  it("more replicas than the single server can hold is refused with the setting to change", async () => {
    const t = await createTestBus({ ensure: false, logger: testLogger(), streamReplicas: 3 });
    try {
      await expect(ensureTopology(t.bus, t.topology, { consumers: [] })).rejects.toThrow(
        new RegExp(
          `^stream ${t.topology.streams.commands.name}: could not create it with 3 replicas \\(.+\\); STREAM_REPLICAS must not exceed the servers of the NATS cluster \\(1 on a single server\\)$`,
        ),
      );
    } finally {
      await t.cleanup();
    }
  });
});
