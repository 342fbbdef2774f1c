import { BusUnavailableError, RequestTimeoutError } from "@vp/bus";
import type { Logger } from "@vp/telemetry";

/**
 * Publishes a result fact until JetStream confirms it is stored. The work is done and paid for; a NATS outage
 * (server restart, network blip) at that moment must not throw it away: failing the handler would nak the job,
 * and the redelivery would take the node over and run the work a second time (seen in fault scenario 3,
 * tests/faults/nats-outage.test.ts). The fact's Nats-Msg-Id is deterministic, so a retry after a lost ack is
 * dropped as a duplicate. Only bus unavailability is retried; the consume helper keeps sending working()
 * while this waits, and `signal` (shutdown) ends the wait with the last error, handing the job back.
 */
export async function untilStored<T>(publishOnce: () => Promise<T>, signal: AbortSignal, logger: Logger, what: string): Promise<T> {
  let failures = 0;
  for (;;) {
    try {
      const stored = await publishOnce();
      if (failures > 0) logger.info({ failures }, `${what} stored after the bus came back`);
      return stored;
    } catch (error) {
      if (!(error instanceof BusUnavailableError || error instanceof RequestTimeoutError) || signal.aborted) throw error;
      failures++;
      if (failures === 1) logger.warn({ err: error }, `${what} not stored: the bus is unavailable; retrying until it is`);
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
