import type { Logger } from "@vp/telemetry";

export type ShutdownStep = readonly [name: string, run: () => Promise<unknown> | unknown];

/**
 * Runs shutdown steps in the given order on SIGTERM/SIGINT (stop taking work first, close the pool last),
 * each bounded by `graceMs`, then exits. A second signal exits at once.
 */
export function registerShutdown(logger: Logger, steps: ShutdownStep[], { graceMs = 25_000 } = {}): () => Promise<void> {
  let running: Promise<void> | undefined;
  const shutdown = () =>
    (running ??= (async () => {
      for (const [name, run] of steps) {
        const started = Date.now();
        try {
          await Promise.race([
            Promise.resolve().then(run),
            new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out after ${graceMs} ms`)), graceMs).unref()),
          ]);
          logger.info({ step: name, ms: Date.now() - started }, "shutdown step done");
        } catch (error) {
          logger.error({ step: name, err: error }, "shutdown step failed");
        }
      }
    })());
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals > 1) process.exit(1);
    logger.info({ signal }, "shutting down");
    void shutdown().then(() => process.exit(0));
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  return shutdown;
}
