import { JetStreamApiError, type ConsumerInfo, type MsgRequest } from "@nats-io/jetstream";
import type { Topology } from "@vp/contracts";
import type { Bus } from "./connect";

/**
 * Acknowledged messages a work-queue stream still holds. A work-queue stream deletes a message when its consumer
 * acknowledges it, but nats-server 2.9's file store can lose those deletions when the server is killed (SIGKILL,
 * OOM, a node lost): after the restart the stream holds the acknowledged messages again while the consumer's ack
 * floor stays past them, so they are never delivered again and never go away. They are not work (each was
 * acknowledged, i.e. done), but they fill the stream and every "is the queue empty" check.
 *
 * They are deleted one by one (STREAM.MSG.DELETE), never with a stream purge: on nats-server 2.9 any purge, even
 * one that removes nothing, also clears the consumer's list of delivered, unacknowledged messages, so a message
 * being worked on at that moment is never redelivered if its handler fails or its process dies.
 */
export interface AcknowledgedLeftovers {
  stream: string;
  consumer: string;
  filter: string | undefined;
  /** The consumer's ack floor (stream sequence): every message of its subject at or below it was acknowledged. */
  ackFloor: number;
  /** Messages deleted (0 when there were none). */
  deleted: number;
}

/** Deletions per consumer per call: a pass stays short; what is left goes on the next pass. */
const MAX_DELETIONS = 1000;

/**
 * Deletes the acknowledged leftovers of the topology's work-queue streams, asking only the topology's own
 * consumers (consumer info, message get and delete: no listing, no purge); returns what it found per consumer.
 */
export async function deleteAcknowledged(bus: Bus, topology: Topology): Promise<AcknowledgedLeftovers[]> {
  const found: AcknowledgedLeftovers[] = [];
  for (const stream of topology.allStreams().filter((s) => s.retention === "workqueue")) {
    const consumers = topology.allConsumers().filter((c) => c.stream === stream.name);
    found.push(
      ...(await deleteAcknowledgedIn(
        bus,
        stream.name,
        consumers.map((c) => c.durable),
      )),
    );
  }
  return found;
}

/** Deletes, per consumer of one stream (all of them, or those named), the messages of its filter subject at or below its ack floor. */
export async function deleteAcknowledgedIn(bus: Bus, stream: string, durables?: string[]): Promise<AcknowledgedLeftovers[]> {
  const found: AcknowledgedLeftovers[] = [];
  const info = await bus.jsm.streams.info(stream);
  // Nothing stored: no need to ask the consumers.
  if (info.state.messages === 0) return found;
  for (const consumer of await consumersOf(bus, stream, durables)) {
    const ackFloor = consumer.ack_floor.stream_seq;
    if (ackFloor < info.state.first_seq) continue;
    const filter = consumer.config.filter_subject || undefined;
    const deleted = await deleteUpTo(bus, stream, filter ?? ">", info.state.first_seq, ackFloor);
    found.push({ stream, consumer: consumer.name, filter, ackFloor, deleted });
    if (deleted > 0) bus.logger.warn({ stream, consumer: consumer.name, ackFloor, deleted }, "deleted acknowledged messages the stream kept");
  }
  return found;
}

/** Walks the stream's messages on `subject` from `firstSeq` to `ackFloor` (the server's next-by-subject get) and deletes each. */
async function deleteUpTo(bus: Bus, stream: string, subject: string, firstSeq: number, ackFloor: number): Promise<number> {
  let deleted = 0;
  for (let seq = firstSeq; seq <= ackFloor && deleted < MAX_DELETIONS; ) {
    // next_by_subj is a STREAM.MSG.GET request field since nats-server 2.9; the client types it for direct gets only.
    const msg = await bus.jsm.streams.getMessage(stream, { seq, next_by_subj: subject } as unknown as MsgRequest);
    if (!msg || msg.seq > ackFloor) break;
    if (await bus.jsm.streams.deleteMessage(stream, msg.seq, false).catch(alreadyGone)) deleted++;
    seq = msg.seq + 1;
  }
  return deleted;
}

/** A message deleted between the get and the delete (NoMessageFound) is what was wanted. */
function alreadyGone(error: unknown): false {
  if (error instanceof JetStreamApiError && error.code === 10037) return false;
  throw error;
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
