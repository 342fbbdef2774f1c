import type { ConsumerInfo } from "@nats-io/jetstream";
import type { Topology } from "@vp/contracts";
import type { Bus } from "./connect";

/**
 * Acknowledged messages a work-queue stream still holds. A work-queue stream deletes a message when its consumer
 * acknowledges it, but nats-server 2.9's file store can lose those deletions when the server is killed (SIGKILL,
 * OOM, a node lost): after the restart the stream holds the acknowledged messages again while the consumer's ack
 * floor stays past them, so they are never delivered again and never go away. They are not work (each was
 * acknowledged, i.e. done), but they fill the stream and every "is the queue empty" check. Purging what lies at or
 * below each consumer's ack floor, on its own filter subject, removes exactly those.
 */
export interface AcknowledgedLeftovers {
  stream: string;
  consumer: string;
  filter: string | undefined;
  /** The consumer's ack floor (stream sequence): every message of its subject at or below it was acknowledged. */
  ackFloor: number;
  /** Messages purged (0 when there were none). */
  purged: number;
}

/**
 * Purges the acknowledged leftovers of the topology's work-queue streams, asking only the topology's own consumers
 * (consumer info and stream purge: no listing); returns what it found per consumer.
 */
export async function purgeAcknowledged(bus: Bus, topology: Topology): Promise<AcknowledgedLeftovers[]> {
  const found: AcknowledgedLeftovers[] = [];
  for (const stream of topology.allStreams().filter((s) => s.retention === "workqueue")) {
    const consumers = topology.allConsumers().filter((c) => c.stream === stream.name);
    found.push(
      ...(await purgeAcknowledgedIn(
        bus,
        stream.name,
        consumers.map((c) => c.durable),
      )),
    );
  }
  return found;
}

/** Purges, per consumer of one stream (all of them, or those named), the messages of its filter subject at or below its ack floor. */
export async function purgeAcknowledgedIn(bus: Bus, stream: string, durables?: string[]): Promise<AcknowledgedLeftovers[]> {
  const found: AcknowledgedLeftovers[] = [];
  const info = await bus.jsm.streams.info(stream);
  // Nothing stored: no need to ask the consumers.
  if (info.state.messages === 0) return found;
  for (const consumer of await consumersOf(bus, stream, durables)) {
    const ackFloor = consumer.ack_floor.stream_seq;
    if (ackFloor < info.state.first_seq) continue;
    const filter = consumer.config.filter_subject || undefined;
    const { purged } = await bus.jsm.streams.purge(stream, { seq: ackFloor + 1, ...(filter ? { filter } : {}) });
    found.push({ stream, consumer: consumer.name, filter, ackFloor, purged });
    if (purged > 0) bus.logger.warn({ stream, consumer: consumer.name, ackFloor, purged }, "purged acknowledged messages the stream kept");
  }
  return found;
}

async function consumersOf(bus: Bus, stream: string, durables: string[] | undefined): Promise<ConsumerInfo[]> {
  const all: ConsumerInfo[] = [];
  if (!durables) {
    for await (const c of bus.jsm.consumers.list(stream)) all.push(c);
    return all;
  }
  for (const durable of durables) {
    const info = await bus.jsm.consumers.info(stream, durable).catch((error: unknown) => {
      // A consumer not created yet holds no ack floor.
      if ((error as { code?: unknown })?.code === "404" || /consumer not found/i.test(String((error as Error)?.message))) return undefined;
      throw error;
    });
    if (info) all.push(info);
  }
  return all;
}
