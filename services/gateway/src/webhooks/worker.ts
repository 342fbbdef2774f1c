import { isPostgresUnavailable } from "@vp/db";
import { scanWebhookEvents } from "./events";
import { sendDueDeliveries, type WebhookSenderDeps } from "./sender";

/**
 * The gateway's webhook loop: every `pollIntervalMs`, turn new events into deliveries (one gateway at a time, under an
 * advisory lock), then send what is due (claimed row by row, so every gateway may help). Both survive a pass that
 * fails (Postgres away): the next pass picks up where the database says.
 */
export function startWebhookWorker(deps: WebhookSenderDeps, { pollIntervalMs, batch = 10 }: { pollIntervalMs: number; batch?: number }) {
  let stopped = false;
  let wake: (() => void) | undefined;
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });

  const report = (error: unknown, what: string) => {
    if (isPostgresUnavailable(error)) deps.logger.warn({ err: error }, `${what}: the database is unavailable; retried on the next pass`);
    else deps.logger.error({ err: error }, `${what} failed; retried on the next pass`);
  };

  async function pass() {
    try {
      await scanWebhookEvents(deps.db, deps.logger);
    } catch (error) {
      report(error, "webhook event scan");
    }
    try {
      // A full batch means more may be due: keep going until a claim comes back short.
      while (!stopped && (await sendDueDeliveries(deps, { limit: batch })) === batch);
    } catch (error) {
      report(error, "webhook sending");
    }
  }

  const loop = (async () => {
    while (!stopped) {
      await pass();
      if (!stopped) await sleep(pollIntervalMs);
    }
  })();
  deps.logger.info({ pollIntervalMs, retrySchedule: deps.retrySchedule, allowCidrs: deps.allow.map((c) => c.text) }, "webhook deliveries on");

  return {
    /** Stops after the pass in progress (its attempts are recorded; a receiver has at most the timeout to answer). */
    async stop() {
      stopped = true;
      wake?.();
      await loop;
    },
  };
}
