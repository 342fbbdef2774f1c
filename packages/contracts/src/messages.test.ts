import { describe, expect, expectTypeOf, it } from "vitest";
import { CancelCommand, ExecuteCommand, RunCommand, SchedulerCommand } from "./messages";

const at = "2025-01-01T00:00:00.000Z";
/** An execute command as the gateway stored it before commands carried `kind` (bytes as they sit in VP_COMMANDS). */
const STORED_BEFORE_KIND = `{"v":1,"commandId":"c1","jobId":"j1","pipelineId":"p1","nodeId":"n1","requestedAt":"${at}"}`;

describe("SchedulerCommand", () => {
  it("reads an execute command stored without a kind as an execute", () => {
    const cmd = SchedulerCommand.parse(JSON.parse(STORED_BEFORE_KIND));
    expect(cmd).toEqual({ v: 1, kind: "execute", commandId: "c1", jobId: "j1", pipelineId: "p1", nodeId: "n1", requestedAt: at });
  });

  it("tells execute, run and cancel apart by kind", () => {
    const execute = { v: 1, kind: "execute", commandId: "c1", jobId: "j1", pipelineId: "p1", nodeId: "n1", requestedAt: at } as const;
    const run = { v: 1, kind: "run", commandId: "c2", runId: "r1", pipelineId: "p1", requestedAt: at } as const;
    const cancel = { v: 1, kind: "cancel", commandId: "c3", pipelineId: "p1", by: "user", requestedAt: at } as const;
    expect(SchedulerCommand.parse(execute)).toEqual(ExecuteCommand.parse(execute));
    expect(SchedulerCommand.parse(run)).toEqual(RunCommand.parse(run));
    expect(SchedulerCommand.parse(cancel)).toEqual(CancelCommand.parse(cancel));
    expect(SchedulerCommand.parse(run).kind).toBe("run");
    expect(SchedulerCommand.parse(cancel).kind).toBe("cancel");
  });

  it("narrows by kind, so no handler needs a cast", () => {
    expectTypeOf<Extract<SchedulerCommand, { kind: "execute" }>>().toEqualTypeOf<ExecuteCommand>();
    expectTypeOf<Extract<SchedulerCommand, { kind: "run" }>>().toEqualTypeOf<RunCommand>();
    expectTypeOf<Extract<SchedulerCommand, { kind: "cancel" }>>().toEqualTypeOf<CancelCommand>();
  });

  it("refuses an unknown kind, and a run or cancel that lacks its fields (never read as an execute)", () => {
    expect(SchedulerCommand.safeParse({ ...JSON.parse(STORED_BEFORE_KIND), kind: "teleport" }).success).toBe(false);
    expect(SchedulerCommand.safeParse({ ...JSON.parse(STORED_BEFORE_KIND), kind: "run" }).success).toBe(false);
    expect(SchedulerCommand.safeParse({ ...JSON.parse(STORED_BEFORE_KIND), kind: "cancel" }).success).toBe(false);
    expect(SchedulerCommand.safeParse("not an object").success).toBe(false);
    expect(SchedulerCommand.safeParse(null).success).toBe(false);
  });

  it("new execute commands carry their kind: the producer's schema requires it", () => {
    expect(ExecuteCommand.safeParse(JSON.parse(STORED_BEFORE_KIND)).success).toBe(false);
    expect(ExecuteCommand.parse({ ...JSON.parse(STORED_BEFORE_KIND), kind: "execute" }).kind).toBe("execute");
  });
});
