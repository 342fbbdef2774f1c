import "reflect-metadata";
import { Controller, Inject, Module } from "@nestjs/common";
import { NestFactory } from "@nestjs/core";
import { Ctx, EventPattern, Payload, type MicroserviceOptions } from "@nestjs/microservices";
import { JobMessage } from "@vp/contracts";
import { afterEach, describe, expect, it } from "vitest";
import { createTestBus, type TestBus } from "../../../testkit/src/nats";
import type { ConsumeContext, GiveUpInfo } from "../consume";
import { NonRetryableError } from "../errors";
import { publish } from "../publish";
import { job, testLogger, waitFor } from "../test-helpers";
import { BusExceptionFilter, JetStreamServer } from "./jetstream-server";
import { createWorker } from "./worker";

const RECORDER = Symbol("recorder");

interface Recorder {
  seen: { jobId: string; attempt: number; subject: string }[];
}

@Controller()
class MergeController {
  // tsx/esbuild emit no decorator metadata: constructor dependencies are injected by token.
  constructor(@Inject(RECORDER) private readonly recorder: Recorder) {}

  @EventPattern("merge-videos")
  async merge(@Payload() payload: JobMessage, @Ctx() ctx: ConsumeContext): Promise<void> {
    this.recorder.seen.push({ jobId: payload.jobId, attempt: ctx.attempt, subject: ctx.subject });
    if (payload.nodeId.startsWith("poison")) throw new NonRetryableError(`cannot merge ${payload.nodeId}`);
  }
}

function moduleWith(recorder: Recorder) {
  @Module({ controllers: [MergeController], providers: [{ provide: RECORDER, useValue: recorder }] })
  class WorkerModule {}
  return WorkerModule;
}

describe("JetStreamServer (NestJS custom transport)", () => {
  let t: TestBus;
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    close = undefined;
    await t?.cleanup();
  });

  it("feeds @EventPattern handlers from their consumer, and a NonRetryableError ends in onGiveUp", async () => {
    t = await createTestBus({ logger: testLogger(), jobAckWaitMs: 1_500 });
    const recorder: Recorder = { seen: [] };
    const gaveUp: { jobId: string; info: GiveUpInfo }[] = [];
    const strategy = new JetStreamServer({
      bus: async () => t.bus,
      logger: testLogger(),
      bindings: {
        "merge-videos": {
          consumer: t.topology.consumers.job("merge-videos"),
          schema: JobMessage,
          onGiveUp: async (p, info) => void gaveUp.push({ jobId: p.jobId, info }),
        },
      },
    });
    const app = await NestFactory.createMicroservice<MicroserviceOptions>(moduleWith(recorder), { strategy, logger: false });
    app.useGlobalFilters(new BusExceptionFilter());
    await app.listen();
    close = () => app.close();

    const ok = job();
    const poison = job({ nodeId: "poison-1" });
    const message = t.topology.messages.job("merge-videos");
    await publish(t.bus, message, ok, { msgId: ok.jobId });
    await publish(t.bus, message, poison, { msgId: poison.jobId });

    await waitFor(() => recorder.seen.length === 2 && gaveUp.length === 1, 5_000);
    expect(recorder.seen.map((s) => s.jobId).sort()).toEqual([ok.jobId, poison.jobId].sort());
    expect(recorder.seen[0]).toMatchObject({ attempt: 1, subject: message.subject });
    expect(gaveUp[0]!.jobId).toBe(poison.jobId);
    expect(gaveUp[0]!.info.reason).toBe("cannot merge poison-1");
    expect(gaveUp[0]!.info.error).toBeInstanceOf(NonRetryableError);
    await new Promise((r) => setTimeout(r, 300));
    expect(recorder.seen).toHaveLength(2);
    expect(strategy.unwrap()).toBe(t.bus);
  });

  it("createWorker wires the filter itself; a pattern without a binding fails start-up", async () => {
    t = await createTestBus({ logger: testLogger() });
    const recorder: Recorder = { seen: [] };
    const gaveUp: string[] = [];
    const app = await createWorker({
      module: moduleWith(recorder),
      logger: testLogger(),
      strategy: new JetStreamServer({
        bus: t.bus,
        logger: testLogger(),
        bindings: {
          "merge-videos": { consumer: t.topology.consumers.job("merge-videos"), schema: JobMessage, onGiveUp: async (_p, i) => void gaveUp.push(i.reason) },
        },
      }),
    });
    close = () => app.close();
    const poison = job({ nodeId: "poison-2" });
    await publish(t.bus, t.topology.messages.job("merge-videos"), poison, { msgId: poison.jobId });
    await waitFor(() => gaveUp.length === 1, 5_000);
    expect(gaveUp).toEqual(["cannot merge poison-2"]);

    const unbound = await NestFactory.createMicroservice<MicroserviceOptions>(moduleWith({ seen: [] }), {
      strategy: new JetStreamServer({ bus: t.bus, logger: testLogger(), bindings: {} }),
      logger: false,
    });
    await expect(unbound.listen()).rejects.toThrow(/no consumer bound to pattern\(s\) merge-videos/);
    await unbound.close();
  });

  it("without BusExceptionFilter (Nest's default filter) a NonRetryableError still ends in onGiveUp with its message", async () => {
    t = await createTestBus({ logger: testLogger() });
    const gaveUp: string[] = [];
    const app = await NestFactory.createMicroservice<MicroserviceOptions>(moduleWith({ seen: [] }), {
      strategy: new JetStreamServer({
        bus: t.bus,
        logger: testLogger(),
        bindings: {
          "merge-videos": { consumer: t.topology.consumers.job("merge-videos"), schema: JobMessage, onGiveUp: async (_p, i) => void gaveUp.push(i.reason) },
        },
      }),
      logger: false,
    });
    await app.listen();
    close = () => app.close();
    const poison = job({ nodeId: "poison-3" });
    await publish(t.bus, t.topology.messages.job("merge-videos"), poison, { msgId: poison.jobId });
    await waitFor(() => gaveUp.length === 1, 5_000);
    expect(gaveUp).toEqual(["cannot merge poison-3"]);
  });
});
