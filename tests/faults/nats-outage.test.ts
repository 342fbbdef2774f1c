/**
 * Fault scenario: nats-server killed (SIGKILL) and restarted, twice, during 1,000 executes.
 * Every request that got 200/202 (the command is stored) runs exactly once; requests during the outage get a
 * 503 with a reason, and a 503 node is still pending with nothing dispatched for it (never "nothing was
 * queued" for a command that then runs). The services reconnect by themselves: none exits, all keep working.
 *
 * Nodes are text assets (the executor's work takes milliseconds), one execute per node, fired at a steady pace
 * (up to 40 in flight) while a fault task kills and restarts the suite's own nats-server (its JetStream file
 * store survives).
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFaultInfra, workStartsByJob, type FaultInfra, type FaultStack } from "./harness";

const NODES = 1000;
const PIPELINES = 10;
const IN_FLIGHT = 40;
const PACE_MS = 15;
const OUTAGE_MS = 4000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let infra: FaultInfra;
let fx: FaultStack;
let admin: pg.Client;

beforeAll(async () => {
  infra = await startFaultInfra("faults-nats");
  fx = await infra.stack({ jobAckWaitMs: 5000, env: { JOB_CONCURRENCY: "8" } });
  admin = new pg.Client({ connectionString: fx.adminUrl });
  await admin.connect();
});

afterAll(async () => {
  await admin?.end().catch(() => undefined);
  await infra?.destroy();
});

interface Sent {
  pipelineId: string;
  nodeId: string;
  status: number;
  body: unknown;
  ms: number;
  phase: "before" | "outage" | "after";
}

describe("nats-server killed and restarted during 1,000 executes", () => {
  it("every accepted execute runs exactly once, every 503 stays pending with nothing dispatched, no service dies", async () => {
    const { api, stack } = fx;
    const targets: Array<{ pipelineId: string; nodeId: string }> = [];
    for (let p = 0; p < PIPELINES; p++) {
      const { pipeline } = await api.ok("POST", "/pipelines", { title: `nats outage ${p}` });
      const ids = Array.from({ length: NODES / PIPELINES }, (_, i) => `t${i}`);
      for (let i = 0; i < ids.length; i += 20) {
        await Promise.all(
          ids
            .slice(i, i + 20)
            .map((id) =>
              api.ok("POST", `/pipelines/${pipeline.id}/nodes`, { id, title: id, type: "asset", asset: { type: "text", content: `text ${p}/${id}` } }),
            ),
        );
      }
      for (const id of ids) targets.push({ pipelineId: pipeline.id, nodeId: id });
    }

    // The fault task: SIGKILL the nats-server after 300 and after 650 answered requests, each time for OUTAGE_MS.
    let phase: Sent["phase"] = "before";
    const sent: Sent[] = [];
    const outages: Array<{ killedAt: number; startedAt: number }> = [];
    const faults = (async () => {
      for (const after of [300, 650]) {
        while (sent.length < after) await sleep(20);
        const killedAt = Date.now();
        await infra.nats.kill("SIGKILL");
        phase = "outage";
        await sleep(OUTAGE_MS);
        await infra.nats.start();
        phase = "after";
        outages.push({ killedAt, startedAt: Date.now() });
      }
    })();

    // Executes go out at a steady pace with up to IN_FLIGHT outstanding, so each outage catches a few dozen
    // requests in flight (the in-doubt window) and gets new ones while NATS is down.
    let inFlight = 0;
    const requests: Array<Promise<void>> = [];
    for (const t of targets) {
      while (inFlight >= IN_FLIGHT) await sleep(5);
      inFlight++;
      const at = phase;
      requests.push(
        (async () => {
          const t0 = Date.now();
          try {
            const res = await api.call("POST", `/pipelines/${t.pipelineId}/nodes/${t.nodeId}/execute`);
            sent.push({ ...t, status: res.status, body: res.body, ms: Date.now() - t0, phase: at });
          } finally {
            inFlight--;
          }
        })(),
      );
      await sleep(PACE_MS);
    }
    await Promise.all(requests);
    await faults;

    const byStatus = new Map<number, number>();
    for (const s of sent) byStatus.set(s.status, (byStatus.get(s.status) ?? 0) + 1);
    console.log(
      `[nats-outage] answers ${JSON.stringify(Object.fromEntries(byStatus))}; outages ${JSON.stringify(outages.map((o) => o.startedAt - o.killedAt))} ms`,
    );

    // Only three answers are allowed: 200 (queued), 202 (stored, verdict late), 503 with a reason.
    const unexpected = sent.filter((s) => ![200, 202, 503].includes(s.status));
    expect(unexpected, JSON.stringify(unexpected.slice(0, 5))).toEqual([]);
    const refused = sent.filter((s) => s.status === 503);
    for (const s of refused) expect((s.body as { error?: string }).error, JSON.stringify(s.body)).toMatch(/bus|NATS/i);
    expect(refused.length, "the outages produced 503s").toBeGreaterThan(0);
    const accepted = sent.filter((s) => s.status === 200 || s.status === 202);
    expect(accepted.length).toBeGreaterThan(NODES / 2);

    // Every accepted node completes. Read the database directly (the source of truth).
    const key = (p: string, n: string) => `${p}/${n}`;
    const acceptedKeys = new Set(accepted.map((s) => key(s.pipelineId, s.nodeId)));
    const deadline = Date.now() + 180_000;
    let rows: Array<{ pipeline_id: string; id: string; status: string; metadata: Record<string, unknown> | null }> = [];
    for (;;) {
      rows = (await admin.query("select pipeline_id, id, status, metadata from video_production_nodes")).rows;
      const done = rows.filter((r) => acceptedKeys.has(key(r.pipeline_id, r.id)) && r.status === "completed").length;
      if (done === acceptedKeys.size) break;
      if (Date.now() > deadline) {
        const stuck = rows.filter((r) => acceptedKeys.has(key(r.pipeline_id, r.id)) && r.status !== "completed");
        // What each service logged about the first few: the answer the client got, and where the command stopped.
        for (const r of stuck.slice(0, 3)) {
          const answer = sent.find((s) => s.pipelineId === r.pipeline_id && s.nodeId === r.id);
          const lines = [...stack.services].flatMap(([name, service]) =>
            service.logs.filter((l) => l.pipelineId === r.pipeline_id && l.nodeId === r.id).map((l) => ({ service: name, ...l })),
          );
          console.log(`[nats-outage] stuck ${key(r.pipeline_id, r.id)}: answer ${JSON.stringify(answer)}; logs ${JSON.stringify(lines, null, 1)}`);
        }
        throw new Error(`${stuck.length} accepted nodes never completed: ${JSON.stringify(stuck.slice(0, 5))}`);
      }
      await sleep(500);
    }
    // Give anything wrongly stored for a 503 a chance to run before looking.
    await sleep(3000);
    rows = (await admin.query("select pipeline_id, id, status, metadata from video_production_nodes")).rows;
    const rowOf = new Map(rows.map((r) => [key(r.pipeline_id, r.id), r]));

    for (const s of refused) {
      const row = rowOf.get(key(s.pipelineId, s.nodeId))!;
      expect({ node: key(s.pipelineId, s.nodeId), status: row.status, jobId: row.metadata?.jobId }).toEqual({
        node: key(s.pipelineId, s.nodeId),
        status: "pending",
        jobId: undefined,
      });
    }

    // Exactly once: one "work started" per accepted node, across every executor process, none for a 503 node.
    const executor = stack.services.get("executor-ffmpeg")!;
    const startsByNode = new Map<string, number>();
    for (const line of executor.logs) {
      if (line.msg === "work started")
        startsByNode.set(key(String(line.pipelineId), String(line.nodeId)), (startsByNode.get(key(String(line.pipelineId), String(line.nodeId))) ?? 0) + 1);
    }
    const twice = [...startsByNode].filter(([, n]) => n !== 1);
    if (twice.length) {
      const [p, n] = twice[0]![0].split("/");
      console.log(
        JSON.stringify(
          executor.logs.filter((l) => l.pipelineId === p && l.nodeId === n),
          null,
          1,
        ).slice(0, 8000),
      );
    }
    expect(twice, "nodes whose work started more than once").toEqual([]);
    expect([...startsByNode.keys()].sort()).toEqual([...acceptedKeys].sort());
    expect([...workStartsByJob(executor.logs).values()].every((n) => n === 1)).toBe(true);
    // Every accepted node completed with the job id the gateway answered.
    for (const s of accepted) {
      const row = rowOf.get(key(s.pipelineId, s.nodeId))!;
      expect(row.metadata?.jobId).toBe((s.body as { job_id: string }).job_id);
    }

    const duplicates = executor.logs.filter((l) => l.msg === "duplicate delivery of a job this process already finished; acknowledged without work").length;
    const heldResults = executor.logs.filter((l) => l.msg === "storing the result done after the bus came back").length;
    console.log(`[nats-outage] duplicate job deliveries acknowledged without work: ${duplicates}; results held through an outage: ${heldResults}`);

    // No service crashed or was restarted, and each reconnected by itself: a fresh execute after the outages runs.
    for (const [name, service] of stack.services) {
      expect(service.proc.exitCode, `${name} exited`).toBeNull();
      expect(service.proc.signalCode, `${name} killed`).toBeNull();
    }
    const { pipeline } = await api.ok("POST", "/pipelines", { title: "after the outages" });
    await api.ok("POST", `/pipelines/${pipeline.id}/nodes`, { id: "last", title: "last", type: "asset", asset: { type: "text", content: "after" } });
    const last = await api.call("POST", `/pipelines/${pipeline.id}/nodes/last/execute`);
    expect(last.status, JSON.stringify(last.body)).toBe(200);
    await api.waitForStatus(pipeline.id, "last", ["completed"], 60_000);
  });
});
