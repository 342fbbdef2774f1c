import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  type ConsumerConfig,
  type ConsumerInfo,
  type StreamConfig,
  type StreamInfo,
} from "@nats-io/jetstream";
import { nanos } from "@nats-io/nats-core";
import type { ConsumerSpec, StreamSpec, Topology } from "@vp/contracts";
import type { Bus } from "./connect";
import { sleep } from "./consume";

/**
 * Creates or updates every stream and durable consumer the topology declares. Idempotent, and safe to run
 * concurrently from several processes at start-up: a lost create race falls back to compare-and-update.
 */
export async function ensureTopology(bus: Bus, topology: Topology, options: EnsureTopologyOptions = {}): Promise<void> {
  if (options.streams === "expect") for (const stream of topology.allStreams()) await awaitStream(bus, stream, options.signal);
  else for (const stream of topology.allStreams()) await ensureStream(bus, stream);
  await Promise.all((options.consumers ?? topology.allConsumers()).map((c) => ensureConsumer(bus, c)));
}

export interface EnsureTopologyOptions {
  /** Only these consumers (e.g. an executor's own job types); default: all of the topology's. Streams: always all. */
  consumers?: ConsumerSpec[];
  /**
   * "manage" (default): create or update every stream. "expect": wait until each exists, for services whose NATS
   * user may not manage streams (the stream manager, permissions.ts STREAM_MANAGER, creates them).
   */
  streams?: "manage" | "expect";
  /** Stops an "expect" wait (shutdown during start-up). */
  signal?: AbortSignal;
}

/** Waits until the stream exists, logging every 10 s what it waits for. */
async function awaitStream(bus: Bus, spec: StreamSpec, signal?: AbortSignal): Promise<void> {
  const started = Date.now();
  let logged = started;
  for (let wait = 100; ; wait = Math.min(wait * 2, 2_000)) {
    if (await streamInfo(bus, spec.name)) return;
    if (Date.now() - logged >= 10_000) {
      logged = Date.now();
      bus.logger.warn({ stream: spec.name, waitedMs: logged - started }, "waiting for the stream manager to create a stream");
    }
    await sleep(wait, signal);
    if (signal?.aborted) throw new Error(`stopped while waiting for stream ${spec.name}`);
  }
}

export function streamConfig(spec: StreamSpec): Partial<StreamConfig> & { name: string } {
  return {
    name: spec.name,
    subjects: spec.subjects,
    retention: spec.retention === "workqueue" ? RetentionPolicy.Workqueue : RetentionPolicy.Limits,
    storage: StorageType.File,
    max_age: nanos(spec.maxAgeSeconds * 1000),
    duplicate_window: nanos(spec.duplicateWindowSeconds * 1000),
    num_replicas: spec.replicas,
  };
}

/**
 * A durable pull consumer with one `filter_subject` (never `filter_subjects`: nats-server 2.9 has no
 * multi-filter consumers). max_deliver is unlimited on purpose: consume() counts deliveries itself so that
 * running out of attempts always ends in onGiveUp (a failed node with a reason), never in a message the
 * server silently stops delivering.
 */
export function consumerConfig(spec: ConsumerSpec): Partial<ConsumerConfig> {
  return {
    durable_name: spec.durable,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(spec.ackWaitMs),
    max_deliver: -1,
    max_ack_pending: spec.maxAckPending,
    filter_subject: spec.filterSubject,
  };
}

export async function ensureStream(bus: Bus, spec: StreamSpec): Promise<StreamInfo> {
  const wanted = streamConfig(spec);
  const existing = await streamInfo(bus, spec.name);
  if (!existing) {
    try {
      return await bus.jsm.streams.add(wanted);
    } catch (err) {
      // Another process created it between our info and add (or with a config that differs): update below.
      if (!(await streamInfo(bus, spec.name))) throw spec.replicas > 1 ? replicasError(spec, `could not create it with ${spec.replicas} replicas`, err) : err;
    }
  }
  const current = existing ?? (await streamInfo(bus, spec.name));
  if (current && sameStream(current.config, wanted)) return current;
  const { name: _name, retention: _retention, storage: _storage, ...updatable } = wanted;
  try {
    return await bus.jsm.streams.update(spec.name, updatable);
  } catch (err) {
    if (current && current.config.num_replicas !== wanted.num_replicas) {
      throw replicasError(spec, `could not change its replicas from ${current.config.num_replicas} to ${spec.replicas}`, err);
    }
    throw err;
  }
}

function replicasError(spec: StreamSpec, what: string, cause: unknown): Error {
  return new Error(
    `stream ${spec.name}: ${what} (${(cause as Error).message}); STREAM_REPLICAS must not exceed the servers of the NATS cluster (1 on a single server)`,
    { cause },
  );
}

export async function ensureConsumer(bus: Bus, spec: ConsumerSpec): Promise<ConsumerInfo> {
  const wanted = consumerConfig(spec);
  const existing = await consumerInfo(bus, spec.stream, spec.durable);
  if (existing && sameConsumer(existing.config, wanted)) return existing;
  if (!existing) {
    try {
      return await bus.jsm.consumers.add(spec.stream, wanted);
    } catch (err) {
      const raced = await consumerInfo(bus, spec.stream, spec.durable);
      if (!raced) throw err;
      if (sameConsumer(raced.config, wanted)) return raced;
    }
  }
  const { durable_name: _d, ack_policy: _a, deliver_policy: _p, ...updatable } = wanted;
  return bus.jsm.consumers.update(spec.stream, spec.durable, updatable);
}

async function streamInfo(bus: Bus, name: string): Promise<StreamInfo | null> {
  try {
    return await bus.jsm.streams.info(name);
  } catch (err) {
    if (isApiError(err, JetStreamApiCodes.StreamNotFound)) return null;
    throw err;
  }
}

async function consumerInfo(bus: Bus, stream: string, durable: string): Promise<ConsumerInfo | null> {
  try {
    return await bus.jsm.consumers.info(stream, durable);
  } catch (err) {
    if (isApiError(err, JetStreamApiCodes.ConsumerNotFound)) return null;
    throw err;
  }
}

export function isApiError(err: unknown, code: number): boolean {
  return err instanceof JetStreamApiError && err.code === code;
}

function sameStream(a: StreamConfig, b: Partial<StreamConfig>): boolean {
  return (
    JSON.stringify([...(a.subjects ?? [])].sort()) === JSON.stringify([...(b.subjects ?? [])].sort()) &&
    a.retention === b.retention &&
    a.storage === b.storage &&
    a.max_age === b.max_age &&
    a.duplicate_window === b.duplicate_window &&
    a.num_replicas === b.num_replicas
  );
}

function sameConsumer(a: ConsumerConfig, b: Partial<ConsumerConfig>): boolean {
  return (
    a.ack_policy === b.ack_policy &&
    a.ack_wait === b.ack_wait &&
    a.max_deliver === b.max_deliver &&
    a.max_ack_pending === b.max_ack_pending &&
    (a.filter_subject ?? "") === (b.filter_subject ?? "")
  );
}
