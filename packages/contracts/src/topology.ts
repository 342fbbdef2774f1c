import type { z } from "zod";
import { NODE_TYPES, type NodeType } from "./catalog";
import {
  CancelCommand,
  ExecuteCommand,
  JobInterrupt,
  JobMessage,
  NodeChanged,
  RunCommand,
  RunReply,
  RunRequest,
  StateEvent,
  StructureChanged,
  TransitionReply,
  TransitionRequest,
} from "./messages";

/**
 * Streams, subjects and durable consumers, declared as data in one place. `namespace` isolates test runs
 * (each test gets its own streams and subjects on the shared nats-server); production uses "".
 */
export interface StreamSpec {
  name: string;
  subjects: string[];
  retention: "workqueue" | "limits";
  /** Seconds; 0 = unlimited. */
  maxAgeSeconds: number;
  /** Nats-Msg-Id dedupe window in seconds. */
  duplicateWindowSeconds: number;
  /** Servers holding a copy (JetStream num_replicas): 1 on a single server, 3 on a production cluster. */
  replicas: number;
}

export interface ConsumerSpec {
  stream: string;
  durable: string;
  filterSubject: string;
  /** How long a delivered message may go without ack or heartbeat before redelivery. */
  ackWaitMs: number;
  /** Deliveries after which the consume helper gives up and fails the node with the last error. */
  maxAttempts: number;
  /** Upper bound of messages in flight across all replicas (a concurrency limit per node type). */
  maxAckPending: number;
}

export interface TopologyOptions {
  namespace?: string;
  /** Ack wait of job consumers (executors heartbeat at a third of it). */
  jobAckWaitMs?: number;
  jobMaxAttempts?: number;
  /** Max in-flight jobs per node type, across all executor replicas. */
  jobConcurrency?: Partial<Record<NodeType, number>>;
  /** Replicas of every stream (default 1); set by the stream manager from STREAM_REPLICAS. */
  streamReplicas?: number;
}

/** A catalog entry: a subject and the schema of every message sent on it (publish and consume both use it). */
export interface MessageSubject<S extends z.ZodType = z.ZodType> {
  readonly subject: string;
  readonly schema: S;
}

/** A catalog entry for core NATS request-reply: the subject, the schema of its requests and of its replies. */
export interface RequestSubject<Req extends z.ZodType = z.ZodType, Rep extends z.ZodType = z.ZodType> {
  readonly subject: string;
  readonly request: Req;
  readonly reply: Rep;
}

/**
 * Every subject a message is sent on, each with its schema: the one place a subject is paired with what it
 * carries, so publish/request/serve (@vp/bus) take an entry and cannot pair them wrongly. `subjects` derives from it.
 */
export interface MessageCatalog {
  /** VP_COMMANDS: execute one node (gateway -> scheduler). */
  execute: MessageSubject<typeof ExecuteCommand>;
  /** VP_COMMANDS: run all / run to here / retry (gateway -> scheduler). */
  run: MessageSubject<typeof RunCommand>;
  /** VP_COMMANDS: cancel a node or a pipeline (gateway -> scheduler). */
  cancel: MessageSubject<typeof CancelCommand>;
  /** VP_JOBS: the work of one claimed node (scheduler -> the executor serving the type). */
  job(type: NodeType): MessageSubject<typeof JobMessage>;
  /** VP_STATE: facts about a running job (executors, scheduler -> state-writer). */
  state(pipelineId: string, nodeId: string): MessageSubject<typeof StateEvent>;
  /** VP_EVENTS: committed changes (state-writer -> gateway SSE, scheduler). */
  events(pipelineId: string): MessageSubject<typeof NodeChanged>;
  /** Core NATS broadcast: abort the work of a cancelled job (scheduler -> every executor replica). */
  interrupt: MessageSubject<typeof JobInterrupt>;
  /** Core NATS broadcast: a committed structure change (gateway -> every gateway replica's open event streams). */
  structure(pipelineId: string): MessageSubject<typeof StructureChanged>;
  /** Core NATS request-reply: guarded transitions (state-writer queue group). */
  transition: RequestSubject<typeof TransitionRequest, typeof TransitionReply>;
  /** Core NATS request-reply: run records (state-writer queue group). */
  runRecord: RequestSubject<typeof RunRequest, typeof RunReply>;
}

export interface Topology {
  namespace: string;
  streams: { commands: StreamSpec; jobs: StreamSpec; state: StreamSpec; events: StreamSpec };
  messages: MessageCatalog;
  subjects: {
    execute: string;
    job(type: NodeType): string;
    state(pipelineId: string, nodeId: string): string;
    events(pipelineId: string): string;
    /** Core NATS: structure changes of one pipeline (`structure("*")` for all). */
    structure(pipelineId: string): string;
    /** Core NATS request-reply subject for guarded transitions (state-writer queue group). */
    transition: string;
    /** Run all / run to here commands (VP_COMMANDS). */
    run: string;
    /** Core NATS request-reply subject for run records (state-writer queue group). */
    runRecord: string;
    /** Cancel commands (VP_COMMANDS). */
    cancel: string;
    /** Core NATS broadcast to executors: abort the work of a cancelled job. */
    interrupt: string;
  };
  consumers: {
    scheduler: ConsumerSpec;
    /** The scheduler learns completions of run members from committed events (VP_EVENTS is a limits stream). */
    schedulerEvents: ConsumerSpec;
    job(type: NodeType): ConsumerSpec;
    stateWriter: ConsumerSpec;
  };
  allStreams(): StreamSpec[];
  allConsumers(): ConsumerSpec[];
}

export function createTopology(options: TopologyOptions = {}): Topology {
  const ns = options.namespace ?? "";
  if (ns && !/^[A-Za-z0-9_]+$/.test(ns)) throw new Error(`invalid bus namespace: ${ns}`);
  const s = (subject: string) => (ns ? `${ns}.${subject}` : subject);
  const n = (name: string) => (ns ? `${ns}_${name}` : name);
  const jobAckWaitMs = options.jobAckWaitMs ?? 30_000;
  const jobMaxAttempts = options.jobMaxAttempts ?? 5;
  const replicas = options.streamReplicas ?? 1;
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > 5)
    throw new Error(`stream replicas must be an integer from 1 to 5 (JetStream's limit), got ${replicas}`);

  const streams = {
    commands: { name: n("VP_COMMANDS"), subjects: [s("vp.cmd.>")], retention: "workqueue", maxAgeSeconds: 0, duplicateWindowSeconds: 120, replicas },
    jobs: { name: n("VP_JOBS"), subjects: [s("vp.job.>")], retention: "workqueue", maxAgeSeconds: 0, duplicateWindowSeconds: 120, replicas },
    state: { name: n("VP_STATE"), subjects: [s("vp.state.>")], retention: "workqueue", maxAgeSeconds: 0, duplicateWindowSeconds: 120, replicas },
    events: { name: n("VP_EVENTS"), subjects: [s("vp.events.>")], retention: "limits", maxAgeSeconds: 24 * 3600, duplicateWindowSeconds: 120, replicas },
  } satisfies Topology["streams"];

  const messages = messageCatalog(s);
  const subjects = subjectsOf(messages);

  const consumers: Topology["consumers"] = {
    scheduler: {
      stream: streams.commands.name,
      durable: "scheduler",
      filterSubject: s("vp.cmd.>"),
      ackWaitMs: 30_000,
      maxAttempts: 20,
      maxAckPending: 256,
    },
    schedulerEvents: {
      stream: streams.events.name,
      durable: "scheduler-events",
      filterSubject: s("vp.events.>"),
      ackWaitMs: 30_000,
      maxAttempts: 20,
      maxAckPending: 256,
    },
    job: (type) => ({
      stream: streams.jobs.name,
      durable: `executor-${type}`,
      filterSubject: subjects.job(type),
      ackWaitMs: jobAckWaitMs,
      maxAttempts: jobMaxAttempts,
      maxAckPending: options.jobConcurrency?.[type] ?? 8,
    }),
    stateWriter: {
      stream: streams.state.name,
      durable: "state-writer",
      filterSubject: s("vp.state.>"),
      ackWaitMs: 30_000,
      maxAttempts: 50,
      maxAckPending: 512,
    },
  };

  return {
    namespace: ns,
    streams,
    messages,
    subjects,
    consumers,
    allStreams: () => Object.values(streams),
    allConsumers: () => [consumers.scheduler, consumers.schedulerEvents, consumers.stateWriter, ...NODE_TYPES.map((t) => consumers.job(t))],
  };
}

/** The catalog with every subject under the namespace (`s`). */
function messageCatalog(s: (subject: string) => string): MessageCatalog {
  return {
    execute: { subject: s("vp.cmd.execute"), schema: ExecuteCommand },
    run: { subject: s("vp.cmd.run"), schema: RunCommand },
    cancel: { subject: s("vp.cmd.cancel"), schema: CancelCommand },
    job: (type) => ({ subject: s(`vp.job.${type}`), schema: JobMessage }),
    state: (pipelineId, nodeId) => ({ subject: s(`vp.state.${pipelineId}.${nodeId}`), schema: StateEvent }),
    events: (pipelineId) => ({ subject: s(`vp.events.${pipelineId}`), schema: NodeChanged }),
    interrupt: { subject: s("vp.interrupt"), schema: JobInterrupt },
    structure: (pipelineId) => ({ subject: s(`vp.structure.${pipelineId}`), schema: StructureChanged }),
    transition: { subject: s("vp.rpc.transition"), request: TransitionRequest, reply: TransitionReply },
    runRecord: { subject: s("vp.rpc.run"), request: RunRequest, reply: RunReply },
  };
}

/** The topology's subjects, each the subject of its catalog entry. */
function subjectsOf(messages: MessageCatalog): Topology["subjects"] {
  return {
    execute: messages.execute.subject,
    job: (type) => messages.job(type).subject,
    state: (pipelineId, nodeId) => messages.state(pipelineId, nodeId).subject,
    events: (pipelineId) => messages.events(pipelineId).subject,
    structure: (pipelineId) => messages.structure(pipelineId).subject,
    transition: messages.transition.subject,
    run: messages.run.subject,
    runRecord: messages.runRecord.subject,
    cancel: messages.cancel.subject,
    interrupt: messages.interrupt.subject,
  };
}
