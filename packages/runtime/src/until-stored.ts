import { BusUnavailableError, RemoteHandlerError, RequestTimeoutError, RetryAfterError } from "@vp/bus";
import { isPostgresUnavailable } from "@vp/db";
import type { Logger } from "@vp/telemetry";

/**
 * Publishes a result fact until JetStream confirms it is stored. The work is done and paid for; a NATS outage
 * (server restart, network blip) at that moment must not throw it away: failing the handler would nak the job,
 * and the redelivery would take the node over and run the work a second time (seen in the NATS-outage
 * fault scenario, tests/faults/nats-outage.test.ts). The fact's Nats-Msg-Id is deterministic, so a retry after
 * a lost ack is dropped as a duplicate. Only bus unavailability is retried; the consume helper keeps sending working()
 * while this waits, and `signal` (shutdown) ends the wait with the last error, handing the job back.
 */
export function untilStored<T>(publishOnce: () => Promise<T>, signal: AbortSignal, logger: Logger, what: string): Promise<T> {
  const busUnavailable = (error: unknown) => error instanceof BusUnavailableError || error instanceof RequestTimeoutError;
  return whileUnavailable(publishOnce, busUnavailable, signal, logger, what, "the bus");
}

/**
 * Reads the database after the work is done, waiting out a Postgres outage: failing the handler then would nak
 * the job and run the finished work again on redelivery. `signal` (shutdown) ends the wait with the last error.
 */
export function untilRead<T>(readOnce: () => Promise<T>, signal: AbortSignal, logger: Logger, what: string): Promise<T> {
  return whileUnavailable(readOnce, isPostgresUnavailable, signal, logger, what, "the database");
}

async function whileUnavailable<T>(
  once: () => Promise<T>,
  unavailable: (error: unknown) => boolean,
  signal: AbortSignal,
  logger: Logger,
  what: string,
  dependency: string,
  maxWaitMs = Number.POSITIVE_INFINITY,
): Promise<T> {
  const startedAt = Date.now();
  let failures = 0;
  for (;;) {
    try {
      const done = await once();
      if (failures > 0) logger.info({ failures }, `${what} done after ${dependency} came back`);
      return done;
    } catch (error) {
      if (!unavailable(error) || signal.aborted || Date.now() - startedAt >= maxWaitMs) throw error;
      failures++;
      if (failures === 1) logger.warn({ err: error }, `${what}: ${dependency} is unavailable; retrying until it is`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.min(2_000, 250 * failures));
        function done() {
          clearTimeout(timer);
          signal.removeEventListener("abort", done);
          resolve();
        }
        signal.addEventListener("abort", done, { once: true });
      });
    }
  }
}

/** How long a job waits in its executor for an unavailable state-writer before it is handed back. */
export const UNAVAILABLE_WAIT_MS = 5 * 60_000;

/**
 * Before any work or spending: claims the node or reads its inputs, waiting out an unavailable state-writer, database
 * or bus in this process for up to `maxWaitMs`. The consume helper keeps the delivery alive (working()) meanwhile, so
 * an outage uses up no delivery of the job: handed back instead, its deliveries would count as failed attempts on any
 * replica that did not hand it back itself, and a database restart could fail nodes with nothing wrong with them.
 * Past `maxWaitMs`, or at shutdown (`signal`), the job is handed back with a RetryAfterError; other errors are
 * thrown unchanged. `once` must be safe to repeat (the claim repeats its claimId, which the state-writer answers
 * idempotently).
 */
export async function untilReachable<T>(
  once: () => Promise<T>,
  signal: AbortSignal,
  logger: Logger,
  what: string,
  maxWaitMs: number,
  dependency = "the state-writer",
): Promise<T> {
  try {
    return await whileUnavailable(once, isUnavailable, signal, logger, what, dependency, maxWaitMs);
  } catch (error) {
    throw retryLaterIfUnavailable(error, `${what} failed`);
  }
}

/** A state-writer that answered with its handler's error, did not answer, or cannot be reached; or Postgres down. */
function isUnavailable(error: unknown): boolean {
  return error instanceof RemoteHandlerError || error instanceof RequestTimeoutError || error instanceof BusUnavailableError || isPostgresUnavailable(error);
}

/**
 * An unavailable state-writer, database or bus as a RetryAfterError (the job is handed back and tried later; those
 * hand-backs have their own budget in the consume helper); other errors are returned unchanged.
 */
export function retryLaterIfUnavailable(error: unknown, what: string, delayMs = 2_000): unknown {
  if (!isUnavailable(error)) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new RetryAfterError(delayMs, `${what}: ${message}`, { cause: error });
}
