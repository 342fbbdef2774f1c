/** Shared by this package's tests only. */
import { randomUUID } from "node:crypto";
import type { JobMessage, NodeType } from "@vp/contracts";
import { createLogger } from "@vp/telemetry";

export async function waitFor<T>(probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10_000, what = "condition"): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function job(overrides: Partial<JobMessage> = {}, type: NodeType = "merge-videos"): JobMessage {
  return {
    v: 1,
    jobId: `job-${randomUUID()}`,
    pipelineId: "p1",
    nodeId: `n-${randomUUID().slice(0, 8)}`,
    type,
    dispatchedAt: new Date().toISOString(),
    ...overrides,
  };
}

/** Quiet unless LOG_LEVEL is set: the policy tests log errors on purpose. */
export const testLogger = () => createLogger({ service: "bus-test", level: process.env.LOG_LEVEL ?? "silent" });
