import { describe, expect, it } from "vitest";
import { createCoalescer, createReadGate } from "./read-gate";

const tick = () => new Promise((r) => setTimeout(r, 5));

describe("whole-pipeline reads", () => {
  it("run at most `slots` at once; the others wait their turn and all finish", async () => {
    const gate = createReadGate(2);
    let running = 0;
    let most = 0;
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        gate.run(async () => {
          most = Math.max(most, ++running);
          await tick();
          running--;
          return i;
        }),
      ),
    );
    expect(results).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(most).toBe(2);
  });

  it("40 identical reads arriving together cost two runs, and each answer was read after its request arrived", async () => {
    const shared = createCoalescer<number>();
    let runs = 0;
    let version = 0;
    const read = async () => {
      runs++;
      const seen = version;
      await tick();
      return seen;
    };
    const first = shared("p", read);
    version = 1; // a write committed while the first read runs: later requests must see it
    const later = Array.from({ length: 39 }, () => shared("p", read));
    expect(await first).toBe(0);
    expect(await Promise.all(later)).toEqual(Array(39).fill(1));
    expect(runs).toBe(2);
    // Once nothing is in flight, a request starts its own run.
    expect(await shared("p", read)).toBe(1);
    expect(runs).toBe(3);
  });

  it("shares a failure with the requests that joined it, not with later ones", async () => {
    const shared = createCoalescer<string>();
    let fail = true;
    const read = async () => {
      await tick();
      if (fail) throw new Error("not found");
      return "ok";
    };
    const joined = [shared("p", read), shared("p", read), shared("p", read)];
    const settled = await Promise.allSettled(joined);
    expect(settled.map((s) => s.status)).toEqual(["rejected", "rejected", "rejected"]);
    fail = false;
    expect(await shared("p", read)).toBe("ok");
  });
});
