import client from "prom-client";

/**
 * Every Prometheus metric of the system, in one registry per process. Services only increment
 * (`metrics.messagesHandled.inc({ subject, consumer })`); GET /metrics answers `metricsText()`
 * (workers on their health port, the gateway on its HTTP port).
 */
export const registry = new client.Registry();

const DURATION_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800];
const TX_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export interface ConsumerInfoSample {
  /** Messages in the stream not yet delivered to this consumer (what KEDA scales on). */
  pending: number;
  /** Delivered, not yet acknowledged (in flight across all replicas). */
  ackPending: number;
}

type ConsumerProbe = { stream: string; consumer: string; read: () => Promise<ConsumerInfoSample> };
const consumerProbes = new Set<ConsumerProbe>();

async function readConsumers(): Promise<Array<{ probe: ConsumerProbe; sample?: ConsumerInfoSample }>> {
  return Promise.all(
    [...consumerProbes].map(async (probe) => {
      try {
        const sample = await Promise.race([probe.read(), new Promise<undefined>((r) => setTimeout(() => r(undefined), 2_000).unref())]);
        return { probe, sample };
      } catch {
        return { probe };
      }
    }),
  );
}

// Both consumer gauges are collected concurrently on a scrape: they share one read (per 500 ms).
let lastRead: { at: number; result: ReturnType<typeof readConsumers> } | undefined;
function readConsumersOnce(): ReturnType<typeof readConsumers> {
  const now = Date.now();
  if (!lastRead || now - lastRead.at > 500) lastRead = { at: now, result: readConsumers() };
  return lastRead.result;
}

export const metrics = {
  /** Bus messages whose handler finished (ack, or an outcome the ack policy decided), per consumer subject filter. */
  messagesHandled: new client.Counter({
    name: "vp_messages_handled_total",
    help: "Bus messages handled by the consume helper, per consumer and subject filter",
    labelNames: ["subject", "consumer"] as const,
    registers: [registry],
  }),
  /** Handler errors (retried or given up) and invalid payloads. */
  messagesFailed: new client.Counter({
    name: "vp_messages_failed_total",
    help: "Bus messages whose handler failed or whose payload was invalid, per consumer, subject filter and reason",
    labelNames: ["subject", "consumer", "reason"] as const,
    registers: [registry],
  }),
  jobDuration: new client.Histogram({
    name: "vp_job_duration_seconds",
    help: "Executor job durations (claimed to result published), per node type and outcome",
    labelNames: ["type", "outcome"] as const,
    buckets: DURATION_BUCKETS,
    registers: [registry],
  }),
  jobsInFlight: new client.Gauge({
    name: "vp_jobs_in_flight",
    help: "Executor jobs being worked on in this process, per node type",
    labelNames: ["type"] as const,
    registers: [registry],
  }),
  /** Read from JetStream (consumer info) on every scrape, for the consumers this process consumes from. */
  consumerPending: new client.Gauge({
    name: "vp_consumer_pending_messages",
    help: "Messages waiting for a JetStream consumer this process consumes from (num_pending, read at scrape time)",
    labelNames: ["stream", "consumer"] as const,
    registers: [registry],
    async collect() {
      for (const { probe, sample } of await readConsumersOnce()) {
        if (sample) this.set({ stream: probe.stream, consumer: probe.consumer }, sample.pending);
      }
    },
  }),
  consumerAckPending: new client.Gauge({
    name: "vp_consumer_ack_pending_messages",
    help: "Messages delivered by a JetStream consumer this process consumes from and not yet acknowledged (num_ack_pending, read at scrape time)",
    labelNames: ["stream", "consumer"] as const,
    registers: [registry],
    async collect() {
      for (const { probe, sample } of await readConsumersOnce()) {
        if (sample) this.set({ stream: probe.stream, consumer: probe.consumer }, sample.ackPending);
      }
    },
  }),
  sseConnections: new client.Gauge({
    name: "vp_sse_connections",
    help: "Open server-sent event streams of the gateway",
    registers: [registry],
  }),
  stateTransactionSeconds: new client.Histogram({
    name: "vp_state_transaction_seconds",
    help: "State-writer transitions: guarded Postgres transaction plus publishing the committed event, per kind",
    labelNames: ["kind", "outcome"] as const,
    buckets: TX_BUCKETS,
    registers: [registry],
  }),
  stateDbTransactionSeconds: new client.Histogram({
    name: "vp_state_db_transaction_seconds",
    help: "State-writer: the Postgres transaction alone (BEGIN to COMMIT, lock waits included), per outcome (applied, already, rejected, error)",
    labelNames: ["outcome"] as const,
    buckets: TX_BUCKETS,
    registers: [registry],
  }),
};

let defaultsOn = false;
/** Names the process (`service` label on every series) and adds Node's default process metrics once. */
export function initMetrics(service: string): void {
  registry.setDefaultLabels({ service });
  if (!defaultsOn) {
    defaultsOn = true;
    client.collectDefaultMetrics({ register: registry, prefix: "vp_" });
  }
}

/** Reports a consumer's pending counts on each scrape until the returned function is called. */
export function watchConsumer(stream: string, consumer: string, read: () => Promise<ConsumerInfoSample>): () => void {
  const probe: ConsumerProbe = { stream, consumer, read };
  consumerProbes.add(probe);
  return () => {
    consumerProbes.delete(probe);
  };
}

/** Times `fn` into a histogram with `labels` plus outcome "ok" / "error". */
export async function timed<T>(histogram: client.Histogram<string>, labels: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const end = histogram.startTimer(labels);
  try {
    const result = await fn();
    end({ outcome: "ok" });
    return result;
  } catch (err) {
    end({ outcome: "error" });
    throw err;
  }
}

/** The Prometheus text exposition of this process's registry. */
export async function metricsText(): Promise<{ contentType: string; body: string }> {
  return { contentType: registry.contentType, body: await registry.metrics() };
}
