import { describe, expect, it } from "vitest";
import type { z } from "zod";
import { NODE_TYPES } from "./catalog";
import { JobInterrupt, JobMessage, NodeChanged, SchedulerCommand, StateEvent, TransitionReply, TransitionRequest, RunReply, RunRequest } from "./messages";
import { createTopology, type MessageSubject, type Topology } from "./topology";

const at = "2025-01-01T00:00:00.000Z";
const ids = { pipelineId: "p1", nodeId: "n1", jobId: "j1" };

/**
 * The schema each durable consumer parses its deliveries with: what its service hands to consume() (scheduler
 * main.ts, state-writer main.ts, the executors' runtime). A subject's catalog schema must be one of these.
 */
const CONSUMER_SCHEMAS: Record<keyof Topology["consumers"], z.ZodType> = {
  scheduler: SchedulerCommand,
  schedulerEvents: NodeChanged,
  stateWriter: StateEvent,
  job: JobMessage,
};

/** Every JetStream subject of the catalog with valid messages of its schema. */
function jetStreamSamples(t: Topology): Array<{ name: string; message: MessageSubject; samples: unknown[] }> {
  const state = { v: 1, ...ids, attempt: 1, at };
  return [
    {
      name: "execute",
      message: t.messages.execute,
      samples: [{ v: 1, kind: "execute", commandId: "c1", jobId: "j1", pipelineId: "p1", nodeId: "n1", requestedAt: at }],
    },
    { name: "run", message: t.messages.run, samples: [{ v: 1, kind: "run", commandId: "c1", runId: "r1", pipelineId: "p1", requestedAt: at }] },
    { name: "cancel", message: t.messages.cancel, samples: [{ v: 1, kind: "cancel", commandId: "c1", pipelineId: "p1", by: "user", requestedAt: at }] },
    ...NODE_TYPES.map((type) => ({
      name: `job(${type})`,
      message: t.messages.job(type),
      samples: [{ v: 1, ...ids, type, dispatchedAt: at }],
    })),
    {
      name: "state",
      message: t.messages.state("p1", "n1"),
      samples: [
        { ...state, kind: "progress", percent: 40 },
        { ...state, kind: "heartbeat" },
        { ...state, kind: "completed", output: { type: "video", s3Key: "k" }, cost: 0 },
        { ...state, kind: "failed", error: "boom", final: true },
      ],
    },
    {
      name: "events",
      message: t.messages.events("p1"),
      samples: [
        {
          v: 1,
          kind: "node",
          eventId: "e1",
          pipelineId: "p1",
          nodeId: "n1",
          type: "merge-videos",
          status: "queued",
          stateVersion: 1,
          metadata: null,
          output: null,
          pipelineMetadata: {},
          at,
        },
      ],
    },
  ];
}

/** NATS subject matching: `*` is one token, `>` the rest. */
function matches(filter: string, subject: string): boolean {
  const f = filter.split(".");
  const s = subject.split(".");
  for (let i = 0; i < f.length; i++) {
    if (f[i] === ">") return s.length > i;
    if (i >= s.length || (f[i] !== "*" && f[i] !== s[i])) return false;
  }
  return f.length === s.length;
}

/** The durable consumers (by their key in the topology) that receive a subject. */
function consumersOf(t: Topology, subject: string): Array<keyof Topology["consumers"]> {
  const found: Array<keyof Topology["consumers"]> = [];
  if (matches(t.consumers.scheduler.filterSubject, subject)) found.push("scheduler");
  if (matches(t.consumers.schedulerEvents.filterSubject, subject)) found.push("schedulerEvents");
  if (matches(t.consumers.stateWriter.filterSubject, subject)) found.push("stateWriter");
  if (NODE_TYPES.some((type) => matches(t.consumers.job(type).filterSubject, subject))) found.push("job");
  return found;
}

describe("the message catalog", () => {
  for (const namespace of ["", "ns1"]) {
    const t = createTopology({ namespace });

    it(`derives the topology's subjects from its entries${namespace ? " (namespaced)" : ""}`, () => {
      expect(t.subjects.execute).toBe(t.messages.execute.subject);
      expect(t.subjects.run).toBe(t.messages.run.subject);
      expect(t.subjects.cancel).toBe(t.messages.cancel.subject);
      expect(t.subjects.interrupt).toBe(t.messages.interrupt.subject);
      expect(t.subjects.transition).toBe(t.messages.transition.subject);
      expect(t.subjects.runRecord).toBe(t.messages.runRecord.subject);
      for (const type of NODE_TYPES) expect(t.subjects.job(type)).toBe(t.messages.job(type).subject);
      expect(t.subjects.state("p1", "n1")).toBe(t.messages.state("p1", "n1").subject);
      expect(t.subjects.events("p1")).toBe(t.messages.events("p1").subject);
      expect(t.messages.execute.subject).toBe(namespace ? `${namespace}.vp.cmd.execute` : "vp.cmd.execute");
    });

    it(`puts each JetStream subject in exactly one stream and the core NATS ones in none${namespace ? " (namespaced)" : ""}`, () => {
      const streamsOf = (subject: string) => t.allStreams().filter((s) => s.subjects.some((f) => matches(f, subject)));
      for (const { name, message } of jetStreamSamples(t)) expect(streamsOf(message.subject), name).toHaveLength(1);
      for (const core of [t.messages.interrupt, t.messages.transition, t.messages.runRecord]) expect(streamsOf(core.subject)).toEqual([]);
    });
  }

  it("gives each subject the schema its consumer parses: every valid message reaches its handler unchanged", () => {
    const t = createTopology();
    for (const { name, message, samples } of jetStreamSamples(t)) {
      const consumers = consumersOf(t, message.subject);
      expect(consumers, name).toHaveLength(1);
      const consumerSchema = CONSUMER_SCHEMAS[consumers[0]!];
      // Commands share one consumer (one filter subject on nats-server 2.9), which parses their union.
      if (consumers[0] !== "scheduler") expect(message.schema, name).toBe(consumerSchema);
      for (const sample of samples) {
        const sent = JSON.parse(JSON.stringify(message.schema.parse(sample)));
        expect(consumerSchema.parse(sent), name).toEqual(sent);
      }
    }
    // Core NATS: the executors parse JobInterrupt; serve() and request() use the entry's own schemas.
    expect(t.messages.interrupt.schema).toBe(JobInterrupt);
    expect(t.messages.transition).toMatchObject({ request: TransitionRequest, reply: TransitionReply });
    expect(t.messages.runRecord).toMatchObject({ request: RunRequest, reply: RunReply });
  });

  it("refuses on each subject the messages of the others", () => {
    const t = createTopology();
    const all = jetStreamSamples(t).filter(
      (e) => e.name === "execute" || e.name === "run" || e.name === "cancel" || e.name === "job(merge-videos)" || e.name === "state" || e.name === "events",
    );
    for (const a of all) {
      for (const b of all) {
        if (a === b) continue;
        for (const sample of b.samples) expect(a.message.schema.safeParse(sample).success, `${b.name} on ${a.name}`).toBe(false);
      }
    }
  });
});
