/**
 * Fault scenario: PostgreSQL stopped for 10 s during a run. No process crashes, the work resumes
 * once the database is back, and nothing is marked failed because of the outage alone: every node of the run
 * completes, exactly once, and no committed event ever carried "failed".
 *
 * The suite's own cluster is stopped with `pg_ctl -m immediate` (a crash: no checkpoint, every connection cut)
 * while a run of 120 text assets is under way on two executor-ffmpeg replicas, and started again 10 s later. A job
 * that cannot be claimed meanwhile waits in its executor: the outage uses up no delivery of any job (handed back
 * instead, a job could reach the other replica with its hand-backs counted as failed attempts, and fail).
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { replayEvents } from "@vp/bus";
import { startFaultInfra, workStartsByJob, type FaultInfra, type FaultStack } from "./harness";

const NODES = 120;
const OUTAGE_MS = 10_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let infra: FaultInfra;
let fx: FaultStack;

beforeAll(async () => {
  infra = await startFaultInfra("faults-pg");
  fx = await infra.stack({ jobAckWaitMs: 10_000, env: { JOB_CONCURRENCY: "4" } });
  await fx.replica("executor-ffmpeg");
});

afterAll(async () => {
  await infra?.destroy();
});

/** A short-lived connection per question: the test's own reads must not depend on a connection that dies with the server. */
async function query<R extends pg.QueryResultRow>(sql: string, values: unknown[] = []): Promise<R[]> {
  const c = new pg.Client({ connectionString: fx.adminUrl });
  await c.connect();
  try {
    return (await c.query<R>(sql, values)).rows;
  } finally {
    await c.end().catch(() => undefined);
  }
}

describe("PostgreSQL stopped for 10 s during a run", () => {
  it("no process crashes, the run resumes and completes, nothing fails because of the outage", async () => {
    const { api, stack, bus, topology } = fx;
    const { pipeline } = await api.ok("POST", "/pipelines", { title: "postgres outage" });
    const P = pipeline.id as string;
    for (let i = 0; i < NODES; i += 20) {
      await Promise.all(
        Array.from({ length: 20 }, (_, k) => `n${i + k}`).map((id) =>
          api.ok("POST", `/pipelines/${P}/nodes`, { id, title: id, type: "asset", asset: { type: "text", content: `note ${id}` } }),
        ),
      );
    }
    // A node outside the run, executed while the database is down.
    const { pipeline: other } = await api.ok("POST", "/pipelines", { title: "executed during the outage" });
    await api.ok("POST", `/pipelines/${other.id}/nodes`, { id: "late", title: "late", type: "asset", asset: { type: "text", content: "late" } });
    // Every committed event of the pipeline, straight from JetStream.
    const statuses: Array<{ nodeId: string; status: string; error?: unknown }> = [];
    const watch = replayEvents(bus, {
      stream: topology.streams.events.name,
      subject: topology.subjects.events(P),
      startSeq: 1,
      onEvent: (_seq, e) => {
        const ev = e as { nodeId: string; status: string; metadata?: { error?: unknown } };
        statuses.push({ nodeId: ev.nodeId, status: ev.status, error: ev.metadata?.error });
      },
    });

    const run = await api.ok("POST", `/pipelines/${P}/execute`, { force: true });
    const completed = async () =>
      (await query<{ n: number }>("select count(*)::int as n from video_production_nodes where pipeline_id = $1 and status = 'completed'", [P]))[0]!.n;
    const deadline = Date.now() + 120_000;
    while ((await completed()) < NODES / 5) {
      if (Date.now() > deadline) throw new Error("the run did not get going");
      await sleep(100);
    }
    await infra.postgres.stop("immediate");
    const stoppedAt = Date.now();
    // While the database is down the gateway answers 503 with a reason (never a 500), and stays up.
    await sleep(2000);
    const during = await api.call("GET", `/pipelines/${P}`);
    expect(during.status, JSON.stringify(during.body)).toBe(503);
    expect(during.body.error).toMatch(/database/i);
    const refused = await api.call("POST", `/pipelines/${other.id}/nodes/late/execute`);
    expect(refused.status, JSON.stringify(refused.body)).toBe(503);
    expect(refused.body.error).toMatch(/database/i);
    await sleep(Math.max(0, OUTAGE_MS - (Date.now() - stoppedAt)));
    await infra.postgres.start();
    const completedAtRestart = await completed();

    // The run resumes and finishes.
    const runDeadline = Date.now() + 180_000;
    let last: { id: string; status: string } | undefined;
    for (;;) {
      const res = await api.call("GET", `/pipelines/${P}/runs`);
      last = res.status === 200 ? res.body.runs[0] : undefined;
      if (last && last.status !== "running") break;
      for (const [name, service] of stack.services) {
        if (service.proc.exitCode !== null || service.proc.signalCode !== null) {
          throw new Error(
            `${name} died during the outage (${service.proc.exitCode ?? service.proc.signalCode}); last logs: ${JSON.stringify(service.logs.slice(-5))}`,
          );
        }
      }
      if (Date.now() > runDeadline) {
        const counts = await query("select status, count(*)::int as n from video_production_nodes where pipeline_id = $1 group by status", [P]);
        throw new Error(`run ${last?.id} still ${last?.status} after the outage: ${JSON.stringify(counts)}`);
      }
      await sleep(500);
    }
    const rows = await query<{ id: string; status: string; metadata: Record<string, unknown> }>(
      "select id, status, metadata from video_production_nodes where pipeline_id = $1",
      [P],
    );
    expect(rows.filter((r) => r.status !== "completed").map((r) => [r.id, r.status, r.metadata?.error])).toEqual([]);
    expect(last).toMatchObject({ id: run.run_id, status: "completed" });
    expect(rows.filter((r) => r.metadata?.history).map((r) => [r.id, r.metadata.history])).toEqual([]);
    // The outage used up no delivery: every node was claimed by its job message's first delivery.
    expect(rows.filter((r) => r.metadata?.delivery !== 1).map((r) => [r.id, r.metadata?.delivery])).toEqual([]);

    // No committed event ever said "failed".
    await sleep(1500);
    await watch.stop();
    expect(statuses.filter((s) => s.status === "failed")).toEqual([]);
    expect(new Set(statuses.filter((s) => s.status === "completed").map((s) => s.nodeId)).size).toBe(NODES);

    // Exactly once: one work start per node, one per job, across both replicas.
    const executorLogs = fx.logsOf("executor-ffmpeg");
    const starts = new Map<string, number>();
    for (const l of executorLogs) if (l.msg === "work started" && l.pipelineId === P) starts.set(String(l.nodeId), (starts.get(String(l.nodeId)) ?? 0) + 1);
    expect([...starts].filter(([, n]) => n !== 1)).toEqual([]);
    expect(starts.size).toBe(NODES);
    expect([...workStartsByJob(executorLogs).values()].every((n) => n === 1)).toBe(true);
    const waited = executorLogs.filter((l) => l.msg === "claiming the node: the state-writer is unavailable; retrying until it is").length;

    // The execute refused during the outage queued nothing.
    const [late] = await query<{ status: string; metadata: Record<string, unknown> | null }>(
      "select status, metadata from video_production_nodes where pipeline_id = $1 and id = 'late'",
      [other.id],
    );
    expect({ status: late!.status, jobId: late!.metadata?.jobId }).toEqual({ status: "pending", jobId: undefined });

    // No process crashed or restarted.
    for (const [name, service] of [...stack.services, ["executor-ffmpeg replica", fx.processesOf("executor-ffmpeg")[1]!] as const]) {
      expect(service.proc.exitCode, `${name} exited`).toBeNull();
      expect(service.proc.signalCode, `${name} killed`).toBeNull();
    }
    console.log(`[postgres-outage] ${NODES} nodes; completed when the database came back: ${completedAtRestart}; claims that waited for it: ${waited}`);
  });
});
