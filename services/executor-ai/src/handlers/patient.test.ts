/** The rate-limit wrapper every executor-ai work function runs in (pure: a work function that keeps saying "later"). */
import { afterEach, describe, expect, it, vi } from "vitest";
import type { WorkContext, WorkFunction } from "@vp/runtime";
import { RetryAfterError, WorkInputError } from "../errors";
import { createPatience } from "./patient";

const ctx = (jobId: string) => ({ job: { jobId }, node: { config: { provider: "heygen" } } }) as unknown as WorkContext;
const later: WorkFunction = async () => {
  throw new RetryAfterError(10_000, "HeyGen rate limit on create video: Too many requests (retry after 10 s)");
};

afterEach(() => {
  vi.useRealTimers();
});

describe("createPatience", () => {
  it("passes 429 delays on while the job has waited less than the limit, then fails the node with the reason", async () => {
    vi.useFakeTimers({ now: 0 });
    const patient = createPatience(30_000)(later);
    await expect(patient(ctx("j1"))).rejects.toBeInstanceOf(RetryAfterError);
    vi.setSystemTime(15_000);
    await expect(patient(ctx("j1"))).rejects.toBeInstanceOf(RetryAfterError);
    // Waited 21 s; another 10 s would pass the 30 s limit.
    vi.setSystemTime(21_000);
    const error = await patient(ctx("j1")).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WorkInputError);
    expect((error as Error).message).toBe(
      "HeyGen rate limit on create video: Too many requests (retry after 10 s); still refused after 21 s (the limit is 30 s): " +
        "heygen's quota is likely spent. Run the node again when it has been raised or has reset",
    );
    // Another job's clock is its own, and starts at its first "later".
    await expect(patient(ctx("j2"))).rejects.toBeInstanceOf(RetryAfterError);
  });

  it("is shared by the work functions it wraps, and a result or another error resets the job's clock", async () => {
    vi.useFakeTimers({ now: 0 });
    const wrap = createPatience(30_000);
    let answer: "later" | "ok" = "later";
    const flaky = wrap(async (c) => (answer === "later" ? later(c) : { output: { type: "audio", s3Key: "k" }, cost: 0 }));
    const other = wrap(later);
    await expect(flaky(ctx("j1"))).rejects.toBeInstanceOf(RetryAfterError);
    vi.setSystemTime(25_000);
    // The clock started by one wrapped function counts for the other (one map per process).
    await expect(other(ctx("j1"))).rejects.toBeInstanceOf(WorkInputError);
    await expect(flaky(ctx("j1"))).rejects.toBeInstanceOf(RetryAfterError);
    answer = "ok";
    await expect(flaky(ctx("j1"))).resolves.toMatchObject({ cost: 0 });
    vi.setSystemTime(50_000);
    answer = "later";
    await expect(flaky(ctx("j1"))).rejects.toBeInstanceOf(RetryAfterError);
  });
});
