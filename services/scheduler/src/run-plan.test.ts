import { describe, expect, it } from "vitest";
import { RunPlan, selectMembers, type PlanNode } from "./run-plan";

const n = (id: string, inputs: string[] = [], status: PlanNode["status"] = "pending"): PlanNode => ({
  id,
  inputs: inputs.length ? { in: inputs } : {},
  status,
});

/** Drives a plan to the end the way the scheduler does: dispatch what is ready, complete it, repeat. */
function drive(plan: RunPlan, fail = new Set<string>()) {
  const order: string[] = [];
  const cancelled: string[] = [];
  let ready = plan.start().ready;
  while (ready.length) {
    const next: string[] = [];
    for (const id of ready) {
      plan.dispatched(id);
      order.push(id);
      const step = plan.observe(id, fail.has(id) ? "failed" : "completed");
      next.push(...step.ready);
      cancelled.push(...step.cancel.map((c) => `${c.nodeId}<-${c.cause}`));
    }
    ready = next;
  }
  return { order, cancelled };
}

describe("RunPlan", () => {
  it("runs a diamond in dependency order, each node once", () => {
    const nodes = [n("a"), n("b", ["a"]), n("c", ["a"]), n("d", ["b", "c", "b"])];
    const plan = new RunPlan(nodes, selectMembers(nodes));
    const { order } = drive(plan);
    expect(order).toEqual(["a", "b", "c", "d"]);
    expect(plan.done).toBe(true);
    expect(plan.counts()).toMatchObject({ completed: 4 });
  });

  it("a failure cancels every dependant with its cause; the independent branch continues", () => {
    const nodes = [n("a"), n("b", ["a"]), n("c", ["b"]), n("x"), n("y", ["x"]), n("z", ["c", "y"])];
    const plan = new RunPlan(nodes, selectMembers(nodes));
    const { order, cancelled } = drive(plan, new Set(["b"]));
    expect(order).toEqual(["a", "x", "b", "y"]);
    expect(cancelled).toEqual(["c<-b", "z<-b"]);
    expect(plan.done).toBe(true);
    expect(plan.counts()).toEqual({ waiting: 0, running: 0, completed: 3, failed: 1, cancelled: 2 });
    // The state-writer's cancellation events come back: nothing changes.
    expect(plan.observe("c", "cancelled")).toEqual({ ready: [], cancel: [] });
  });

  it("run to here: only the target and what it needs that is not completed", () => {
    const nodes = [n("a", [], "completed"), n("b", ["a"]), n("c", ["b"]), n("d", ["c"]), n("e", ["d"]), n("side")];
    expect(selectMembers(nodes, ["d"])).toEqual(["b", "c", "d"]);
    const plan = new RunPlan(nodes, ["b", "c", "d"]);
    expect(drive(plan).order).toEqual(["b", "c", "d"]);
  });

  it("drops stale and repeated events by state version", () => {
    const nodes = [{ ...n("a"), stateVersion: 3 }, n("b", ["a"])];
    const plan = new RunPlan(nodes, ["a", "b"]);
    expect(plan.observe("a", "failed", 2)).toEqual({ ready: [], cancel: [] }); // from before the run
    expect(plan.observe("a", "completed", 5).ready).toEqual(["b"]);
    expect(plan.observe("a", "completed", 5).ready).toEqual([]);
  });

  it("rebuilt after a restart: members that ended in the run keep their state and their dependants are cancelled", () => {
    const nodes: PlanNode[] = [{ ...n("a", [], "failed"), memberState: "failed" }, n("b", ["a"]), n("c")];
    const plan = new RunPlan(nodes, ["a", "b", "c"]);
    expect(plan.start()).toEqual({ ready: ["c"], cancel: [{ nodeId: "b", cause: "a" }] });
  });

  it("orchestrates a 1,000-node wide pipeline and a 1,000-node chain in well under a second", () => {
    const wide = [
      n("root"),
      ...Array.from({ length: 998 }, (_, i) => n(`w${i}`, ["root"])),
      n(
        "sink",
        Array.from({ length: 998 }, (_, i) => `w${i}`),
      ),
    ];
    const chain = Array.from({ length: 1000 }, (_, i) => n(`c${i}`, i ? [`c${i - 1}`] : []));
    for (const [name, nodes] of [
      ["wide", wide],
      ["chain", chain],
    ] as const) {
      const t0 = performance.now();
      const plan = new RunPlan(nodes, selectMembers(nodes));
      const { order } = drive(plan);
      const ms = performance.now() - t0;
      expect(order).toHaveLength(1000);
      expect(plan.done).toBe(true);
      console.log(`run plan, 1,000-node ${name}: ${ms.toFixed(2)} ms total, ${((ms / 1000) * 1000).toFixed(1)} µs per node`);
      expect(ms).toBeLessThan(250);
    }
  });
});
