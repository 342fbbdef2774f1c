import { evictCacheEntries, type CacheEvictionPolicy, type Queryable } from "@vp/db";
import type { Logger } from "@vp/telemetry";

/**
 * Evicts result-cache entries every `intervalMs` (see evictCacheEntries): those unused for policy.idleMs, and the
 * least recently used of those keeping a deleted pipeline's or node's file once such files pass policy.maxKeptBytes.
 * The gateway's periodic collection then deletes the files nothing refers to any more.
 */
export function startCacheEviction(deps: { db: Queryable; logger: Logger; policy: CacheEvictionPolicy; intervalMs: number }): { stop(): Promise<void> } {
  let running: Promise<unknown> = Promise.resolve();
  const pass = () => {
    running = running.then(async () => {
      try {
        const evicted = await evictCacheEntries(deps.db, deps.policy);
        if (evicted.length) deps.logger.info({ evicted: evicted.length }, "result cache entries evicted");
      } catch (error) {
        deps.logger.warn({ err: error }, "cache eviction failed; retried on the next pass");
      }
    });
  };
  const timer = setInterval(pass, deps.intervalMs);
  timer.unref();
  pass();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
