import type { MsgRequest } from "@nats-io/jetstream";
import { JetStreamApiCodes } from "@nats-io/jetstream";
import type { ConsumerSpec, Topology } from "@vp/contracts";
import type { Bus } from "./connect";
import { ensureConsumer, isApiError } from "./topology";

/**
 * Messages of a work-queue stream that its consumer will never deliver, and the consumer reset that delivers them.
 *
 * A killed nats-server 2.9 (SIGKILL, OOM, a node lost) can come back with a stream and its consumer out of step:
 * - the stream lost its last writes while the consumer's state survived: the stream hands out sequence numbers
 *   again that the consumer has already passed, so new messages stored there are never delivered (work lost);
 * - the stream lost the deletions of acknowledged messages: they sit below the consumer's ack floor, done but
 *   never removed.
 * Both look the same from outside (a message stored at or below the ack floor), and a sequence number alone cannot
 * tell work from a leftover. So neither is deleted: the consumer is deleted and created again from its spec, which
 * delivers every message the stream holds. Every handler is idempotent per command, fact and job id, so a leftover
 * that was already done is acknowledged without effect, and the lost work runs.
 *
 * A message found at or below the ack floor is only acted on when the next pass finds the same one: the server
 * moves a consumer's ack floor a moment before it deletes the acknowledged message, and a pass must not reset a
 * consumer for that. A consumer whose delivered sequence is past the stream's last sequence is reset at once: that
 * state has no innocent explanation.
 */
export interface ConsumerReset {
  stream: string;
  consumer: string;
  reason: "stream-behind-consumer" | "stored-below-ack-floor";
  /** The consumer's delivered and acknowledged stream sequences, and the stream's last sequence, before the reset. */
  delivered: number;
  ackFloor: number;
  streamLastSeq: number;
  /** The stored message the consumer had passed (stored-below-ack-floor). */
  strandedSeq?: number;
  /** Created again here; otherwise its own service creates it again when its next pull finds it gone. */
  recreated: boolean;
}

export interface StrandedWatch {
  /** One pass over the watched consumers; the resets it made. */
  pass(): Promise<ConsumerReset[]>;
}

/**
 * Watches the work-queue consumers of the topology (consumer info and one message get per consumer and pass; no
 * listing, no purge, no message deletion). `recreate` names the durables this process may create again itself.
 */
export function watchStranded(bus: Bus, topology: Topology, recreate: ReadonlySet<string>): StrandedWatch {
  const workQueues = new Set(
    topology
      .allStreams()
      .filter((s) => s.retention === "workqueue")
      .map((s) => s.name),
  );
  return watchStrandedIn(
    bus,
    topology.allConsumers().filter((c) => workQueues.has(c.stream)),
    recreate,
  );
}

/** watchStranded for the given consumers (all on work-queue streams). */
export function watchStrandedIn(bus: Bus, consumers: ConsumerSpec[], recreate: ReadonlySet<string>): StrandedWatch {
  // stream/durable -> the sequence found at or below the ack floor on the previous pass.
  const suspected = new Map<string, number>();
  return {
    async pass() {
      const resets: ConsumerReset[] = [];
      for (const stream of new Set(consumers.map((c) => c.stream))) {
        const specs = consumers.filter((c) => c.stream === stream);
        // Consumers first, then the stream: a message stored and delivered in between must not look like a
        // consumer past the stream's last sequence.
        const infos = await Promise.all(
          specs.map((spec) =>
            bus.jsm.consumers.info(stream, spec.durable).catch((error: unknown) => {
              // A consumer not created yet has delivered nothing.
              if (isApiError(error, JetStreamApiCodes.ConsumerNotFound)) return undefined;
              throw error;
            }),
          ),
        );
        const state = (await bus.jsm.streams.info(stream)).state;
        for (const [i, spec] of specs.entries()) {
          const key = `${stream}/${spec.durable}`;
          const info = infos[i];
          if (!info) continue;
          const seen = {
            stream,
            consumer: spec.durable,
            delivered: info.delivered.stream_seq,
            ackFloor: info.ack_floor.stream_seq,
            streamLastSeq: state.last_seq,
          };
          if (seen.delivered > state.last_seq) {
            resets.push(await reset(bus, spec, recreate, { ...seen, reason: "stream-behind-consumer" }));
            suspected.delete(key);
            continue;
          }
          const stranded = state.messages > 0 && seen.ackFloor >= state.first_seq ? await firstAtOrBelow(bus, spec, state.first_seq, seen.ackFloor) : undefined;
          if (stranded === undefined) {
            suspected.delete(key);
          } else if (suspected.get(key) === stranded) {
            resets.push(await reset(bus, spec, recreate, { ...seen, reason: "stored-below-ack-floor", strandedSeq: stranded }));
            suspected.delete(key);
          } else {
            suspected.set(key, stranded);
          }
        }
      }
      return resets;
    },
  };
}

/** The first message of the consumer's filter subject stored at or below its ack floor (the server's next-by-subject get). */
async function firstAtOrBelow(bus: Bus, spec: ConsumerSpec, firstSeq: number, ackFloor: number): Promise<number | undefined> {
  // next_by_subj is a STREAM.MSG.GET request field since nats-server 2.9; the client types it for direct gets only.
  const request = { seq: firstSeq, next_by_subj: spec.filterSubject } as unknown as MsgRequest;
  const msg = await bus.jsm.streams.getMessage(spec.stream, request).catch((error: unknown) => {
    if (isApiError(error, JetStreamApiCodes.NoMessageFound)) return null;
    throw error;
  });
  return msg && msg.seq <= ackFloor ? msg.seq : undefined;
}

async function reset(bus: Bus, spec: ConsumerSpec, recreate: ReadonlySet<string>, seen: Omit<ConsumerReset, "recreated">): Promise<ConsumerReset> {
  await bus.jsm.consumers.delete(spec.stream, spec.durable).catch((error: unknown) => {
    if (!isApiError(error, JetStreamApiCodes.ConsumerNotFound)) throw error;
  });
  const recreated = recreate.has(spec.durable);
  if (recreated) await ensureConsumer(bus, spec);
  bus.logger.warn({ ...seen, recreated }, "reset a consumer that had passed messages its stream still holds; they are delivered again");
  return { ...seen, recreated };
}
