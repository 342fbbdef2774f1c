import { createTopology, ExecuteCommand, type NodeChanged, type RunReply, type RunRequest } from "@vp/contracts";
import { afterEach, describe, expect, it } from "vitest";
import { createTestBus, type TestBus } from "../../testkit/src/nats";
import type { Bus } from "./connect";
import { InvalidPayloadError } from "./errors";
import { publish } from "./publish";
import { broadcast, request, serve } from "./rpc";
import { job, testLogger } from "./test-helpers";

const topology = createTopology();
const runRequest: RunRequest = { v: 1, kind: "finish", runId: "r1", status: "completed", summary: {} };
const runReply: RunReply = { ok: false, reason: "no" };

/**
 * Type-checked by tsc (`npm run typecheck`), never run: each call pairs a subject with another subject's message,
 * and `@ts-expect-error` fails the typecheck if one of them compiles.
 */
export function mismatchedPairings(bus: Bus, event: NodeChanged) {
  // @ts-expect-error a job message is not an execute command
  void publish(bus, topology.messages.execute, job(), { msgId: "x" });
  // @ts-expect-error a committed event is not a fact about a running job
  void publish(bus, topology.messages.state("p1", "n1"), event, { msgId: "x" });
  // @ts-expect-error a subject alone names no schema: the old (subject, schema) pairing is gone
  void publish(bus, topology.subjects.execute, ExecuteCommand, job(), { msgId: "x" });
  // @ts-expect-error a run record request is not a transition request
  void request(bus, topology.messages.transition, runRequest, { timeoutMs: 1 });
  // @ts-expect-error the transition responder answers TransitionReply, not a run record reply
  serve(bus, topology.messages.transition, { queue: "q", logger: testLogger() }, async () => runReply);
  // @ts-expect-error an interrupt carries JobInterrupt
  broadcast(bus, topology.messages.interrupt, job());
}

describe("publish through the catalog", () => {
  let t: TestBus | undefined;
  afterEach(async () => {
    await t?.cleanup();
    t = undefined;
  });

  it("validates by the entry's schema: a message of another subject forced past the types is refused before sending", async () => {
    t = await createTestBus({ logger: testLogger() });
    const err = await publish(t.bus, t.topology.messages.execute, job() as never, { msgId: "x" }).catch((e) => e);
    expect(err).toBeInstanceOf(InvalidPayloadError);
    expect(err.message).toMatch(new RegExp(`^invalid payload for ${t.topology.subjects.execute}: `));
    const info = await t.bus.jsm.streams.info(t.topology.streams.commands.name);
    expect(info.state.messages).toBe(0);
  });
});
