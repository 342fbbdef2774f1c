import type { WorkFunction } from "@vp/runtime";
import { RetryAfterError, WorkInputError } from "../errors";

/**
 * A wrapper for work functions: a provider that keeps saying "later" (429 after 429: a spent quota looks like that
 * too) fails the node with the reason once the job has been told to wait for `rateLimitMaxWaitMs`, instead of
 * holding a slot for hours. The clock starts at the job's first "later" in this process (time queued behind other
 * jobs does not count); a restart, or a redelivery to another replica, starts it again, so the bound is per process.
 * One wrapper is shared by every node type of the process.
 */
export function createPatience(rateLimitMaxWaitMs: number): (work: WorkFunction) => WorkFunction {
  const waitingSince = new Map<string, number>();
  return (work) => async (ctx) => {
    const jobId = ctx.job.jobId;
    try {
      const result = await work(ctx);
      waitingSince.delete(jobId);
      return result;
    } catch (error) {
      if (!(error instanceof RetryAfterError)) {
        waitingSince.delete(jobId);
        throw error;
      }
      const now = Date.now();
      for (const [id, since] of waitingSince) if (now - since > 2 * rateLimitMaxWaitMs) waitingSince.delete(id);
      const since = waitingSince.get(jobId) ?? now;
      waitingSince.set(jobId, since);
      const waited = now - since;
      if (waited + error.delayMs <= rateLimitMaxWaitMs) throw error;
      waitingSince.delete(jobId);
      const provider = String((ctx.node.config as { provider?: unknown } | null)?.provider ?? "the provider");
      throw new WorkInputError(
        `${error.message}; still refused after ${Math.round(waited / 1000)} s (the limit is ${Math.round(rateLimitMaxWaitMs / 1000)} s): ` +
          `${provider}'s quota is likely spent. Run the node again when it has been raised or has reset`,
      );
    }
  };
}
