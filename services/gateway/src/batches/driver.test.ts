/** The batch driver's pacing: a pass begins every interval, the time a pass took (its run requests too) included. */
import { describe, expect, it } from "vitest";
import { passDelay } from "./driver";

describe("batch driver pacing", () => {
  it("waits what is left of the interval after a pass, so passes begin once an interval", () => {
    expect(passDelay(1000, 0)).toBe(1000);
    expect(passDelay(1000, 300)).toBe(700);
    expect(passDelay(1000, 850)).toBe(150);
  });

  it("after a pass longer than the interval, waits a tenth of it rather than asking the database back to back", () => {
    expect(passDelay(1000, 1000)).toBe(100);
    expect(passDelay(1000, 4000)).toBe(100);
  });
});
