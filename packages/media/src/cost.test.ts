import { describe, expect, it } from "vitest";
import { computeCost, lambdaCost, runFfmpeg } from "./index";

describe("cost", () => {
  it("local compute costs nothing unless a CPU-second rate is configured", () => {
    expect(computeCost(12.5)).toBe(0);
    expect(computeCost(12.5, 0.0001)).toBe(0.00125);
    expect(computeCost(-1, 1)).toBe(0);
  });

  it("a Lambda invocation costs GB-seconds of its memory and billed duration plus the request", () => {
    // 3008 MB for 2 s: 2.9375 GB x 2 s x $0.0000166667 + $0.0000002.
    expect(lambdaCost({ durationMs: 2000, memoryMb: 3008 })).toBe(0.000098);
    expect(lambdaCost({ durationMs: 60_000, memoryMb: 1024 })).toBe(0.001);
    // Billed in whole milliseconds.
    expect(lambdaCost({ durationMs: 999.2, memoryMb: 1024, requestUsd: 0, pricePerGbSecond: 1 })).toBe(1);
  });

  it("runFfmpeg measures the CPU time ffmpeg used", async () => {
    const { cpuSeconds, wallSeconds } = await runFfmpeg(
      ["-f", "lavfi", "-i", "testsrc2=s=640x480:r=30:d=3", "-c:v", "libx264", "-preset", "medium", "-f", "null", "-"],
      { totalSeconds: 3 },
    );
    expect(cpuSeconds).toBeGreaterThan(0.2);
    expect(wallSeconds).toBeGreaterThan(0);
    // Both cores at most (libx264 is threaded), with room for the sampling step.
    expect(cpuSeconds).toBeLessThan(wallSeconds * 2 + 0.5);
  });
});
