import type { Logger } from "@vp/telemetry";

export type ShutdownStep = readonly [name: string, run: () => Promise<unknown> | unknown];

/** Default of SHUTDOWN_GRACE_MS: a little under Kubernetes' default terminationGracePeriodSeconds (30). */
export const DEFAULT_SHUTDOWN_GRACE_MS = 25_000;

/**
 * How much of the shutdown grace period in-flight work may use (consume's stopTimeoutMs) before it is
 * interrupted and handed back: the grace period minus a reserve for nak'ing, draining NATS and closing the
 * pool (a fifth of it, at most 5 s).
 */
export function workGraceMs(graceMs: number): number {
  return Math.max(0, graceMs - Math.min(5_000, Math.floor(graceMs / 5)));
}

/**
 * Runs shutdown steps in the given order on SIGTERM/SIGINT (stop taking work first, close the pool last),
 * all within `graceMs` in total (SHUTDOWN_GRACE_MS; each step gets what is left of it), then exits 0.
 * A step that runs out of time is logged and skipped. A second signal exits at once with 1.
 */
export function registerShutdown(logger: Logger, steps: ShutdownStep[], { graceMs = DEFAULT_SHUTDOWN_GRACE_MS } = {}): () => Promise<void> {
  let running: Promise<void> | undefined;
  const shutdown = () =>
    (running ??= (async () => {
      const deadline = Date.now() + graceMs;
      for (const [name, run] of steps) {
        const started = Date.now();
        const budget = Math.max(100, deadline - started);
        let timer: NodeJS.Timeout | undefined;
        try {
          await Promise.race([
            Promise.resolve().then(run),
            new Promise((_, reject) => {
              timer = setTimeout(() => reject(new Error(`timed out after ${budget} ms (grace period ${graceMs} ms)`)), budget);
              timer.unref();
            }),
          ]);
          logger.info({ step: name, ms: Date.now() - started }, "shutdown step done");
        } catch (error) {
          logger.error({ step: name, err: error }, "shutdown step failed");
        } finally {
          clearTimeout(timer);
        }
      }
    })());
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals > 1) process.exit(1);
    logger.info({ signal, graceMs }, "shutting down");
    void shutdown().then(() => process.exit(0));
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  return shutdown;
}
