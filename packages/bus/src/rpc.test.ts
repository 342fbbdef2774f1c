import { startTracing, traceIds, withSpan, type Tracing } from "@vp/telemetry";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { createTestBus, type TestBus } from "../../testkit/src/nats";
import { BusUnavailableError, InvalidPayloadError, RemoteHandlerError, RequestTimeoutError } from "./errors";
import { publishReply, request, serve, waitForReply, type Responder } from "./rpc";
import { delay, testLogger } from "./test-helpers";

const Claim = z.object({ v: z.literal(1), nodeId: z.string(), slowMs: z.number().optional(), fail: z.boolean().optional() });
const ClaimReply = z.discriminatedUnion("ok", [
  z.object({ ok: z.literal(true), nodeId: z.string(), traceId: z.string().optional() }),
  z.object({ ok: z.literal(false), code: z.enum(["stale"]), reason: z.string() }),
]);

describe("request / serve (core NATS, queue group)", () => {
  let t: TestBus;
  let responders: Responder[] = [];
  let tracing: Tracing;
  beforeAll(async () => {
    tracing = startTracing({ serviceName: "rpc-test" });
    t = await createTestBus({ logger: testLogger(), ensure: false });
  });
  afterEach(async () => {
    await Promise.all(responders.map((r) => r.stop()));
    responders = [];
  });
  afterAll(async () => {
    await t.cleanup();
    await tracing.shutdown();
  });

  const route = (subject: string) => ({ subject, request: Claim, reply: ClaimReply });

  function start() {
    const claim = route(`${t.topology.subjects.transition}.${Math.random().toString(36).slice(2)}`);
    responders.push(
      serve(t.bus, claim, { queue: "state-writer", logger: testLogger() }, async (req) => {
        if (req.slowMs) await delay(req.slowMs);
        if (req.fail) throw new Error("database is down");
        return { ok: true as const, nodeId: req.nodeId, traceId: traceIds().traceId };
      }),
    );
    return claim;
  }

  it("round-trips a validated request and reply, in the caller's trace", async () => {
    const claim = start();
    const { reply, caller } = await withSpan("caller", {}, async () => ({
      reply: await request(t.bus, claim, { v: 1, nodeId: "n1" }, { timeoutMs: 2_000 }),
      caller: traceIds(),
    }));
    expect(reply).toMatchObject({ ok: true, nodeId: "n1" });
    expect(reply.ok && reply.traceId).toBe(caller.traceId);
  });

  it("times out with RequestTimeoutError when the responder is too slow", async () => {
    const claim = start();
    const err = await request(t.bus, claim, { v: 1, nodeId: "n1", slowMs: 500 }, { timeoutMs: 200 }).catch((e) => e);
    expect(err).toBeInstanceOf(RequestTimeoutError);
    expect(err.message).toMatch(/within 200 ms/);
  });

  it("maps no responders to BusUnavailableError", async () => {
    const err = await request(t.bus, route(`${t.topology.subjects.transition}.nobody`), { v: 1, nodeId: "n1" }, { timeoutMs: 1_000 }).catch((e) => e);
    expect(err).toBeInstanceOf(BusUnavailableError);
  });

  it("reports a failing responder handler as RemoteHandlerError", async () => {
    const claim = start();
    const err = await request(t.bus, claim, { v: 1, nodeId: "n1", fail: true }, { timeoutMs: 2_000 }).catch((e) => e);
    expect(err).toBeInstanceOf(RemoteHandlerError);
    expect(err.message).toMatch(/database is down/);
  });

  it("answers an invalid request with { ok: false, code: 'invalid' } and request() refuses to send one", async () => {
    const claim = start();
    const raw = await t.bus.nc.request(claim.subject, JSON.stringify({ v: 2 }), { timeout: 2_000 });
    expect(raw.json()).toMatchObject({ ok: false, code: "invalid", reason: expect.stringMatching(/nodeId/) });
    await expect(request(t.bus, claim, { v: 1 } as never, { timeoutMs: 500 })).rejects.toBeInstanceOf(InvalidPayloadError);
  });

  it("waitForReply + publishReply: a reply on the inbox named by a message, or null when late", async () => {
    const Verdict = z.object({ ok: z.boolean() });
    const verdict = await waitForReply(t.bus, Verdict, 2_000, async (inbox) => {
      setTimeout(() => publishReply(t.bus, inbox, Verdict, { ok: true }), 50);
    });
    expect(verdict).toEqual({ ok: true });
    const late = await waitForReply(t.bus, Verdict, 100, async () => {});
    expect(late).toBeNull();
    expect(() => publishReply(t.bus, "_INBOX.x", Verdict, { ok: "yes" } as never)).toThrow(InvalidPayloadError);
  });
});
