/**
 * Fault scenario: two parents completing at the same instant — their child is dispatched once.
 * Many small runs whose two parents finish together (one executor running four jobs at once, tiny identical clips), so the scheduler
 * sees both completions back to back; every child must be claimed and dispatched exactly once.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeTestClip } from "@vp/media";
import { startFaultInfra, type FaultInfra, type FaultStack } from "./harness";

let infra: FaultInfra;
let fx: FaultStack;
let clip: Uint8Array;

beforeAll(async () => {
  infra = await startFaultInfra("faults-parents");
  fx = await infra.stack({ jobAckWaitMs: 5000, env: { JOB_CONCURRENCY: "4" } });
  const path = join(infra.dir, "clip.mp4");
  await makeTestClip({ path, durationSeconds: 1, width: 64, height: 48, fps: 10, audio: false });
  clip = new Uint8Array(await readFile(path));
});

afterAll(async () => {
  await infra?.destroy();
});

describe("two parents complete at the same instant", () => {
  it("the child is dispatched once, in every one of 25 runs", async () => {
    const { api, stack } = fx;
    const runs: Array<{ P: string; runId: string }> = [];
    for (let i = 0; i < 25; i++) {
      const { pipeline } = await api.ok("POST", "/pipelines", { title: `parents ${i}` });
      const P = pipeline.id as string;
      for (const id of ["left", "right"]) {
        await api.ok("POST", `/pipelines/${P}/nodes`, { id, title: id, type: "asset", asset: { type: "video" } });
        await api.ok("PUT", `/pipelines/${P}/nodes/${id}/asset`, clip, { "content-type": "video/mp4" });
      }
      await api.ok("POST", `/pipelines/${P}/nodes`, { id: "child", title: "child", type: "merge-videos", inputs: { segments: ["left", "right"] } });
      // force: the same clips merged in every pipeline would otherwise come from the cache after the first.
      const res = await api.ok("POST", `/pipelines/${P}/execute`, { force: true });
      runs.push({ P, runId: res.run_id });
    }
    for (const { P, runId } of runs) {
      const deadline = Date.now() + 120_000;
      for (;;) {
        const { runs: list } = await api.ok("GET", `/pipelines/${P}/runs`);
        if (list[0]?.status !== "running") {
          expect(list[0], JSON.stringify(list[0])).toMatchObject({ id: runId, status: "completed" });
          break;
        }
        if (Date.now() > deadline) throw new Error(`run ${runId} still running`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    const dispatched = new Map<string, number>();
    for (const line of stack.services.get("scheduler")!.logs) {
      if (line.msg === "run member dispatched" && line.nodeId === "child") dispatched.set(String(line.runId), (dispatched.get(String(line.runId)) ?? 0) + 1);
    }
    expect([...dispatched.keys()].sort()).toEqual(runs.map((r) => r.runId).sort());
    expect(
      [...dispatched.values()].every((n) => n === 1),
      JSON.stringify([...dispatched]),
    ).toBe(true);
    const started = stack.services.get("executor-ffmpeg")!.logs.filter((l) => l.msg === "work started" && l.nodeId === "child");
    expect(started).toHaveLength(25);
  });
});
