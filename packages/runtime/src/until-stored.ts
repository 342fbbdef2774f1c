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
): Promise<T> {
  let failures = 0;
  for (;;) {
    try {
      const done = await once();
      if (failures > 0) logger.info({ failures }, `${what} done after ${dependency} came back`);
      return done;
    } catch (error) {
      if (!unavailable(error) || signal.aborted) throw error;
      failures++;
      if (failures === 1) logger.warn({ err: error }, `${what} not done: ${dependency} is unavailable; retrying until it is`);
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

/**
 * Before any work or spending, a job that cannot be claimed or read because the state-writer, its database or
 * NATS is unavailable is retried later (RetryAfterError: those retries have their own budget, see consume.ts)
 * instead of counting as a failed attempt. Counted, a 10 s Postgres outage used up a job's attempts and failed
 * nodes that had nothing wrong with them (PostgreSQL-outage fault scenario, tests/faults/postgres-outage.test.ts).
 * Other errors are returned unchanged.
 */
export function retryLaterIfUnavailable(error: unknown, what: string, delayMs = 2_000): unknown {
  const unavailable =
    error instanceof RemoteHandlerError || error instanceof RequestTimeoutError || error instanceof BusUnavailableError || isPostgresUnavailable(error);
  if (!unavailable) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new RetryAfterError(delayMs, `${what}: ${message}`, { cause: error });
}
