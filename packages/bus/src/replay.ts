import { DeliverPolicy, type ConsumerMessages } from "@nats-io/jetstream";
import type { z } from "zod";
import type { Bus } from "./connect";
import { errorMessage } from "./connect";
import { backoffMs, sleep } from "./consume";
import { InvalidPayloadError } from "./errors";
import { formatIssues } from "./publish";

export interface ReplayOptions<S extends z.ZodType | undefined = undefined> {
  stream: string;
  /** One subject (or wildcard); a single filter_subject, which nats-server 2.9 supports. */
  subject: string;
  /** First stream sequence to deliver (e.g. Last-Event-ID + 1). Omitted: only messages stored from now on. */
  startSeq?: number;
  /** Validate payloads; invalid ones are skipped and reported to onError. Omitted: payload is the parsed JSON. */
  schema?: S;
  onEvent: (seq: number, payload: S extends z.ZodType ? z.output<S> : unknown, raw: string) => void | Promise<void>;
  /** Recoverable trouble (server restart, invalid event); replay keeps going. */
  onError?: (err: unknown) => void;
}

export interface Replay {
  stop(): Promise<void>;
}

/**
 * Delivers a stream's messages on one subject in order, from `startSeq` or from now on, for SSE.
 * Uses the library's ordered pull consumer (ephemeral, ack none, memory storage, filter_subject). If the
 * consumer or connection is lost it is recreated from the last delivered sequence + 1, so a server restart
 * neither skips nor repeats events.
 */
export function replayEvents<S extends z.ZodType | undefined = undefined>(bus: Bus, options: ReplayOptions<S>): Replay {
  let stopped = false;
  let iter: ConsumerMessages | undefined;
  const stopSignal = new AbortController();
  let next = options.startSeq;

  const done = (async () => {
    let failures = 0;
    while (!stopped) {
      try {
        // "From now on" is resolved to a sequence once: the library's ordered consumer would otherwise
        // restart a deliver-new consumer from sequence 1 after a reset.
        next ??= (await lastSequence(bus, options.stream)) + 1;
        const consumer = await bus.js.consumers.get(options.stream, {
          filter_subjects: options.subject,
          deliver_policy: DeliverPolicy.StartSequence,
          opt_start_seq: Math.max(1, next),
        });
        if (stopped) break;
        iter = await consumer.consume({ max_messages: 256 });
        if (stopped) iter.stop();
        failures = 0;
        for await (const m of iter) {
          if (stopped) break;
          next = m.seq + 1;
          const raw = m.string();
          let payload: unknown;
          try {
            payload = JSON.parse(raw);
            if (options.schema) {
              const parsed = options.schema.safeParse(payload);
              if (!parsed.success) throw new InvalidPayloadError(`invalid event at seq ${m.seq}: ${formatIssues(parsed.error)}`);
              payload = parsed.data;
            }
          } catch (err) {
            options.onError?.(
              err instanceof InvalidPayloadError ? err : new InvalidPayloadError(`event at seq ${m.seq}: ${errorMessage(err)}`, { cause: err }),
            );
            continue;
          }
          await options.onEvent(m.seq, payload as never, raw);
        }
        if (!stopped) throw new Error(`replay of ${options.subject} ended; resuming at seq ${next}`);
      } catch (err) {
        if (stopped) break;
        failures++;
        options.onError?.(err);
        await sleep(backoffMs(failures), stopSignal.signal);
      }
    }
  })();

  return {
    stop: async () => {
      stopped = true;
      stopSignal.abort();
      iter?.stop();
      await done;
    },
  };
}

/** The stream's last sequence (0 when empty). */
export async function lastSequence(bus: Bus, stream: string): Promise<number> {
  const info = await bus.jsm.streams.info(stream);
  return info.state.last_seq;
}
