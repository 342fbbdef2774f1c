/**
 * Fault scenario: executors killed with SIGKILL mid-job, repeatedly, across 200 nodes.
 *
 * 20 pipelines of 10 nodes (two uploaded clips, their merge, two HeyGen talking heads on the fake HeyGen, five text
 * assets), each dispatched by one run command (force: every member really runs), one every 2 s. Two processes of
 * each executor; while the runs go on, whichever holds the most work is SIGKILLed mid-job and restarted, over and
 * over, one at a time (HeyGen keeps its jobs running until executor-ai was killed under them twice). At the
 * end, for every accepted run:
 * - every member is completed (nothing lost) by the job the run dispatched,
 * - exactly one completion per node was committed (state-writer) and published on VP_EVENTS,
 * - every talking head created exactly one HeyGen job (creates == talking heads; no job without its node),
 * - no ffmpeg is left running under the executors' work directory.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { replayEvents } from "@vp/bus";
import { NodeChanged } from "@vp/contracts";
import { makeTestClip } from "@vp/media";
import { startFakeProviders, type FakeProviders, type ServiceName, type ServiceProcess } from "@vp/testkit";
import { ffmpegProcessesUnder } from "../e2e/helpers";
import { startFaultInfra, type FaultInfra, type FaultStack, HEYGEN_TALKING_HEAD } from "./harness";

const PIPELINES = 20;
const TEXTS = ["t1", "t2", "t3", "t4", "t5"];
const HEADS = ["h1", "h2"];
const NODES_PER_PIPELINE = 2 + 1 + HEADS.length + TEXTS.length;

let infra: FaultInfra;
let fx: FaultStack;
let fakes: FakeProviders;
let clip: Uint8Array;

/**
 * Two executor processes ("slots") per executor. Kills alternate between them, one at a time: the slot holding the
 * most work is killed, and restarted before the next kill, so each executor always has a live process.
 */
const SLOTS = [
  { id: "ffmpeg-1", name: "executor-ffmpeg" as const },
  { id: "ffmpeg-2", name: "executor-ffmpeg" as const },
  { id: "ai-1", name: "executor-ai" as const },
  { id: "ai-2", name: "executor-ai" as const },
];
/** SIGKILLs mid-job per executor before HeyGen lets its jobs finish (until then every talking head is in flight). */
const AI_KILLS_WHILE_HELD = 2;
/** Time between two run commands: the work keeps flowing for a while, so kills keep landing mid-job. */
const RUN_SPACING_MS = 2000;
const current = new Map<string, ServiceProcess>();

beforeAll(async () => {
  fakes = await startFakeProviders({ pollsUntilDone: 3 });
  infra = await startFaultInfra("faults-kill");
  fx = await infra.stack({
    jobAckWaitMs: 3000,
    services: ["state-writer", "scheduler", "gateway"],
    env: {
      ...fakes.env,
      LOG_LEVEL: "info",
      JOB_CONCURRENCY: "4",
      TALKING_HEAD_CONCURRENCY: "6",
      // Every SIGKILL costs the jobs in flight one delivery (and a killed pull request can cost more): this scenario
      // is about exactly-once under kills, not about giving up (the poison scenario), so the limits leave room for many.
      JOB_MAX_ATTEMPTS: "25",
      MAX_NODE_ATTEMPTS: "25",
      STALLED_AFTER_MS: "9000",
      RECONCILE_INTERVAL_MS: "1000",
      PROVIDER_POLL_INTERVAL_MS: "300",
      PROVIDER_HTTP_TIMEOUT_MS: "2000",
    },
  });
  // Four executor slots, each with its own WORK_ROOT (an executor reaps its WORK_ROOT when it starts: a restarted
  // slot cleans up after its own previous life, never after a live neighbour).
  for (const slot of SLOTS) current.set(slot.id, await fx.replica(slot.name, { WORK_ROOT: join(fx.scratch, `work-${slot.id}`) }));
  const path = join(infra.dir, "clip.mp4");
  await makeTestClip({ path, durationSeconds: 1, width: 160, height: 120, fps: 10, audio: true });
  clip = new Uint8Array(await readFile(path));
});

afterAll(async () => {
  await infra?.destroy();
  await fakes?.close();
});

/** Jobs a process started and has not finished, from its log (a process works on one job at most once at a time). */
function inFlight(p: ServiceProcess): number {
  const open = new Set<string>();
  for (const l of p.logs) {
    if (l.msg === "work started") open.add(String(l.jobId));
    else if (
      ["work completed", "work cancelled", "attempt superseded; stopping without a result", "handler failed; will retry", "giving up on message"].includes(
        String(l.msg),
      )
    )
      open.delete(String(l.jobId));
  }
  return open.size;
}

interface Kill {
  slot: string;
  name: ServiceName;
  pid: number;
  inFlight: number;
  signal: NodeJS.Signals | null;
  /** ffmpeg processes of the victim still running 3 s after it died. */
  strays: number;
}

/**
 * Kills, again and again until `stop`, the process of `name` that holds the most work (waiting until one holds
 * some: every kill is mid-job), and restarts it in its slot before the next kill.
 */
function killRepeatedly(name: ServiceName, kills: Kill[], stop: { now: boolean }): Promise<void> {
  const slots = SLOTS.filter((slot) => slot.name === name);
  return (async () => {
    while (!stop.now) {
      await new Promise((r) => setTimeout(r, 1000 + Math.random() * 1000));
      let slot: (typeof SLOTS)[number] | undefined;
      while (!stop.now) {
        const busiest = [...slots].sort((x, y) => inFlight(current.get(y.id)!) - inFlight(current.get(x.id)!))[0]!;
        if (inFlight(current.get(busiest.id)!) > 0) {
          slot = busiest;
          break;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      if (!slot) break;
      const victim = current.get(slot.id)!;
      const holding = inFlight(victim);
      victim.kill("SIGKILL");
      const { signal } = await victim.exited;
      // Before the restart reaps anything: the kernel (setpriv --pdeathsig) already ended the victim's ffmpeg.
      const workRoot = join(fx.scratch, `work-${slot.id}`);
      const deadline = Date.now() + 3000;
      let strays = await ffmpegProcessesUnder(workRoot);
      while (strays.length > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        strays = await ffmpegProcessesUnder(workRoot);
      }
      kills.push({ slot: slot.id, name, pid: victim.pid, inFlight: holding, signal, strays: strays.length });
      current.set(slot.id, await fx.replica(name, { WORK_ROOT: workRoot }));
    }
  })();
}

describe("executors SIGKILLed mid-job, repeatedly, across 200 nodes", () => {
  it("every node of every accepted run completes exactly once; HeyGen creates one job per talking head; no ffmpeg left", async () => {
    const { api, stack, bus, topology } = fx;
    expect(SLOTS.map((slot) => current.get(slot.id)!.proc.exitCode)).toEqual([null, null, null, null]);
    const started = Date.now();

    const pipelines: string[] = [];
    for (let i = 0; i < PIPELINES; i++) {
      const { pipeline } = await api.ok("POST", "/pipelines", { title: `kill ${i}` });
      const P = pipeline.id as string;
      pipelines.push(P);
      for (const id of ["a", "b"]) {
        await api.ok("POST", `/pipelines/${P}/nodes`, { id, title: `clip ${id}`, type: "asset", asset: { type: "video" } });
        await api.ok("PUT", `/pipelines/${P}/nodes/${id}/asset`, clip, { "content-type": "video/mp4" });
      }
      await api.ok("POST", `/pipelines/${P}/nodes`, {
        id: "m",
        title: "merge",
        type: "merge-videos",
        inputs: { segments: ["a", "b"] },
        config: { reencode: "always" },
      });
      for (const id of HEADS) {
        await api.ok("POST", `/pipelines/${P}/nodes`, {
          id,
          title: `head ${id}`,
          type: "talking-head",
          config: { ...HEYGEN_TALKING_HEAD, script: `Pipeline ${i}, presenter ${id}, speaking once.` },
        });
      }
      for (const id of TEXTS) {
        await api.ok("POST", `/pipelines/${P}/nodes`, {
          id,
          title: `text ${id}`,
          type: "asset",
          asset: { type: "text", content: `text ${id} of pipeline ${i}` },
        });
      }
    }

    const kills: Kill[] = [];
    const stop = { now: false };
    // Every talking head stays in flight (polling a running HeyGen job) until executor-ai was killed under it a few
    // times; then HeyGen finishes them.
    fakes.heygen.hold();
    const killers = [killRepeatedly("executor-ffmpeg", kills, stop), killRepeatedly("executor-ai", kills, stop)];
    const release = (async () => {
      const deadline = Date.now() + 120_000;
      while (!stop.now && kills.filter((k) => k.name === "executor-ai").length < AI_KILLS_WHILE_HELD && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
      }
      fakes.heygen.release();
    })();

    // One run command per pipeline; the accepted ones (200 running / 202 accepted, each with its run id) are the
    // commands every check below is about.
    const accepted = new Map<string, string>();
    try {
      for (const P of pipelines) {
        const res = await api.call("POST", `/pipelines/${P}/execute`, { force: true });
        expect([200, 202], JSON.stringify(res.body)).toContain(res.status);
        accepted.set(P, res.body.run_id as string);
        await new Promise((r) => setTimeout(r, RUN_SPACING_MS));
      }
      for (const P of pipelines) {
        const deadline = Date.now() + 300_000;
        for (;;) {
          const { runs } = await api.ok("GET", `/pipelines/${P}/runs`);
          const run = runs.find((r: { id: string }) => r.id === accepted.get(P));
          if (run && run.status !== "running") {
            const { pipeline } = await api.ok("GET", `/pipelines/${P}`);
            const unfinished = (pipeline.nodes as Array<{ id: string; status: string; metadata: unknown }>).filter((n) => n.status !== "completed");
            expect(run.status, `run ${run.id}: ${JSON.stringify(run.metadata?.counts)}; not completed: ${JSON.stringify(unfinished)}`).toBe("completed");
            break;
          }
          if (Date.now() > deadline) throw new Error(`run ${accepted.get(P)} of ${P} still ${run?.status ?? "unrecorded"}`);
          await new Promise((r) => setTimeout(r, 500));
        }
      }
    } finally {
      stop.now = true;
      await Promise.all([...killers, release]);
    }
    const runSeconds = (Date.now() - started) / 1000;

    // Every member of every accepted run is completed by the job its run dispatched.
    const nodeIds = ["a", "b", "m", ...HEADS, ...TEXTS];
    expect(nodeIds).toHaveLength(NODES_PER_PIPELINE);
    const providerJobs: string[] = [];
    let retried = 0;
    for (const P of pipelines) {
      const { pipeline } = await api.ok("GET", `/pipelines/${P}`);
      expect(pipeline.nodes.map((n: { id: string }) => n.id).sort()).toEqual([...nodeIds].sort());
      for (const node of pipeline.nodes as Array<{ id: string; status: string; metadata: Record<string, unknown>; output: Record<string, unknown> }>) {
        expect(node.status, `${P}/${node.id}: ${JSON.stringify(node.metadata)}`).toBe("completed");
        expect(node.metadata.runId, `${P}/${node.id}`).toBe(accepted.get(P));
        expect(node.output?.s3Key, `${P}/${node.id}`).toBeTruthy();
        if (HEADS.includes(node.id)) providerJobs.push(String(node.output.providerJobId));
        retried += Number(node.metadata.retries ?? 0) > 0 ? 1 : 0;
      }
    }

    // Exactly one committed completion per node: in the state-writer's commits and on VP_EVENTS.
    const key = (p: unknown, n: unknown) => `${String(p)}/${String(n)}`;
    const expected = pipelines.flatMap((P) => nodeIds.map((n) => key(P, n))).sort();
    const countCommits = () => {
      const counts = new Map<string, number>();
      for (const l of stack.services.get("state-writer")!.logs) {
        if (l.msg === "state committed" && l.status === "completed" && l.outcome === "applied")
          counts.set(key(l.pipelineId, l.nodeId), (counts.get(key(l.pipelineId, l.nodeId)) ?? 0) + 1);
      }
      return counts;
    };
    // (A commit's log line is written after its event is published, so it may trail the run's end a little.)
    const logsBy = Date.now() + 15_000;
    while (countCommits().size < expected.length && Date.now() < logsBy) await new Promise((r) => setTimeout(r, 100));
    const commits = countCommits();
    expect([...commits.keys()].sort()).toEqual(expected);
    expect([...commits].filter(([, n]) => n !== 1)).toEqual([]);

    const stream = topology.streams.events.name;
    const lastSeq = (await bus.jsm.streams.info(stream)).state.last_seq;
    const published = new Map<string, number>();
    let seen = 0;
    const replay = await replayEvents(bus, {
      stream,
      subject: topology.subjects.events("*"),
      startSeq: 1,
      schema: NodeChanged,
      onEvent: (seq, event) => {
        seen = seq;
        if (event.status === "completed") published.set(key(event.pipelineId, event.nodeId), (published.get(key(event.pipelineId, event.nodeId)) ?? 0) + 1);
      },
    });
    const deadline = Date.now() + 60_000;
    while (seen < lastSeq && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await replay.stop();
    expect(seen).toBe(lastSeq);
    expect([...published.keys()].sort()).toEqual(expected);
    expect([...published].filter(([, n]) => n !== 1)).toEqual([]);

    // No paid provider job created twice: one HeyGen job per talking head, each used by exactly one node.
    expect(providerJobs).toHaveLength(PIPELINES * HEADS.length);
    expect(new Set(providerJobs).size).toBe(providerJobs.length);
    expect(fakes.heygen.creates).toBe(PIPELINES * HEADS.length);
    expect([...fakes.heygen.jobs.keys()].sort()).toEqual([...providerJobs].sort());

    // The kills happened, mid-job, to both executors, and cost work that was then taken over.
    const midJob = kills.filter((k) => k.inFlight > 0);
    expect(kills.every((k) => k.signal === "SIGKILL")).toBe(true);
    expect(
      kills.filter((k) => k.strays > 0),
      "ffmpeg outliving its executor",
    ).toEqual([]);
    expect(midJob).toEqual(kills);
    expect(kills.filter((k) => k.name === "executor-ffmpeg").length, JSON.stringify(kills)).toBeGreaterThanOrEqual(2);
    expect(kills.filter((k) => k.name === "executor-ai").length, JSON.stringify(kills)).toBeGreaterThanOrEqual(AI_KILLS_WHILE_HELD);
    expect(retried).toBeGreaterThan(0);

    // No ffmpeg outlives its executor (setpriv --pdeathsig) or is left by anyone.
    await new Promise((r) => setTimeout(r, 1000));
    expect(await ffmpegProcessesUnder(fx.scratch)).toEqual([]);

    console.log(
      `executor kills: ${PIPELINES * NODES_PER_PIPELINE} nodes in ${runSeconds.toFixed(0)} s, ${kills.length} SIGKILLs (${midJob.length} mid-job, ` +
        `${midJob.reduce((s, k) => s + k.inFlight, 0)} jobs cut off), ${retried} nodes retried, ${fakes.heygen.creates} HeyGen creates`,
    );
  });
});
