import { NodeChanged } from "@vp/contracts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestBus, type TestBus } from "../../testkit/src/nats";
import { publish } from "./publish";
import { lastSequence, replayEvents } from "./replay";
import { testLogger, waitFor } from "./test-helpers";

function event(pipelineId: string, n: number): NodeChanged {
  return {
    v: 1,
    kind: "node",
    eventId: `${pipelineId}-${n}`,
    pipelineId,
    nodeId: "n1",
    type: "merge-videos",
    status: "in_progress",
    stateVersion: n,
    metadata: null,
    output: null,
    pipelineMetadata: {},
    at: new Date().toISOString(),
  };
}

describe("replayEvents (ordered consumer, one filter subject)", () => {
  let t: TestBus;
  beforeAll(async () => {
    t = await createTestBus({ logger: testLogger() });
  });
  afterAll(() => t.cleanup());

  const send = (e: NodeChanged) => publish(t.bus, t.topology.messages.events(e.pipelineId), e, { msgId: e.eventId });

  it("delivers exactly the later messages of its subject from a start sequence, then live ones", async () => {
    const p1 = `a${Date.now()}`;
    const p2 = `b${Date.now()}`;
    const acks = [];
    for (let n = 1; n <= 3; n++) {
      acks.push(await send(event(p1, n)));
      await send(event(p2, n));
    }
    const from = acks[1]!.seq; // the second p1 event, as if Last-Event-ID were the first one
    const got: { seq: number; eventId: string }[] = [];
    const errors: unknown[] = [];
    const replay = replayEvents(t.bus, {
      stream: t.topology.streams.events.name,
      subject: t.topology.subjects.events(p1),
      startSeq: from,
      schema: NodeChanged,
      onEvent: (seq, payload) => void got.push({ seq, eventId: payload.eventId }),
      onError: (e) => errors.push(e),
    });
    try {
      await waitFor(() => got.length === 2, 5_000);
      await send(event(p2, 4));
      const live = await send(event(p1, 4));
      await waitFor(() => got.length === 3, 5_000);
      expect(got).toEqual([
        { seq: acks[1]!.seq, eventId: `${p1}-2` },
        { seq: acks[2]!.seq, eventId: `${p1}-3` },
        { seq: live.seq, eventId: `${p1}-4` },
      ]);
      expect(errors).toEqual([]);
    } finally {
      await replay.stop();
    }
  });

  it("without a start sequence delivers only new messages", async () => {
    const p = `c${Date.now()}`;
    await send(event(p, 1));
    const got: string[] = [];
    const replay = replayEvents(t.bus, {
      stream: t.topology.streams.events.name,
      subject: t.topology.subjects.events(p),
      onEvent: (_seq, payload) => void got.push((payload as NodeChanged).eventId),
    });
    try {
      await new Promise((r) => setTimeout(r, 300));
      await send(event(p, 2));
      await waitFor(() => got.length === 1, 5_000);
      expect(got).toEqual([`${p}-2`]);
      expect(await lastSequence(t.bus, t.topology.streams.events.name)).toBeGreaterThan(0);
    } finally {
      await replay.stop();
    }
  });
});
