import { NODE_TYPES, type NodeType } from "./catalog";

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

export interface Topology {
  namespace: string;
  streams: { commands: StreamSpec; jobs: StreamSpec; state: StreamSpec; events: StreamSpec };
  subjects: {
    execute: string;
    job(type: NodeType): string;
    state(pipelineId: string, nodeId: string): string;
    events(pipelineId: string): string;
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

  const subjects: Topology["subjects"] = {
    execute: s("vp.cmd.execute"),
    job: (type) => s(`vp.job.${type}`),
    state: (pipelineId, nodeId) => s(`vp.state.${pipelineId}.${nodeId}`),
    events: (pipelineId) => s(`vp.events.${pipelineId}`),
    transition: s("vp.rpc.transition"),
    run: s("vp.cmd.run"),
    runRecord: s("vp.rpc.run"),
    cancel: s("vp.cmd.cancel"),
    interrupt: s("vp.interrupt"),
  };

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
    subjects,
    consumers,
    allStreams: () => Object.values(streams),
    allConsumers: () => [consumers.scheduler, consumers.schedulerEvents, consumers.stateWriter, ...NODE_TYPES.map((t) => consumers.job(t))],
  };
}
