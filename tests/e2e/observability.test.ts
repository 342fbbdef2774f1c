/**
 * Tracing and metrics: one execute of a merge-videos node is one trace across the four backend
 * services (exported over OTLP/HTTP to a local receiver), and /metrics of every service exposes the named
 * series, whose values move when a node runs. Services are real processes, started like in production
 * (with the telemetry preload).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createTestBus,
  createTestDatabase,
  openSse,
  REPO_ROOT,
  startOtlpReceiver,
  startStack,
  type OtlpReceiver,
  type ReceivedSpan,
  type ServiceName,
  type Stack,
  type TestBus,
  type TestDatabase,
} from "@vp/testkit";
import { client, createCompletedClips, type Client } from "./helpers";

let db: TestDatabase;
let bus: TestBus;
let stack: Stack;
let api: Client;
let scratch: string;
let otlp: OtlpReceiver;

const BACKEND: ServiceName[] = ["state-writer", "scheduler", "executor-ffmpeg", "gateway"];

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "vp-obs-"));
  otlp = await startOtlpReceiver();
  db = await createTestDatabase();
  bus = await createTestBus({ jobAckWaitMs: 3000 });
  stack = await startStack({
    databaseAdminUrl: db.adminUrl,
    namespace: bus.topology.namespace,
    storageRoot: join(scratch, "storage"),
    workRoot: join(scratch, "work"),
    services: BACKEND,
    env: { JOB_ACK_WAIT_MS: "3000", OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_BSP_SCHEDULE_DELAY: "200" },
  });
  api = client(stack.baseUrl);
});

afterAll(async () => {
  await stack?.stop();
  await otlp?.close();
  await bus?.cleanup();
  await db?.drop();
  await rm(scratch, { recursive: true, force: true });
});

const PG = "@opentelemetry/instrumentation-pg";
/**
 * pg spans are named `pg.query:<first word> <database>` and carry the statement as db.query.text. A node's write is
 * an UPDATE, or a WITH whose first part updates the node (a transition recounts the pipeline in the same statement).
 */
const isUpdate = (s: ReceivedSpan) =>
  s.name.startsWith("pg.query:UPDATE") ||
  (s.name.startsWith("pg.query:WITH") && /^WITH n AS \(UPDATE video_production_nodes\b/.test(String(s.attributes["db.query.text"] ?? "").trim()));

function ancestors(span: ReceivedSpan, byId: Map<string, ReceivedSpan>): ReceivedSpan[] {
  const chain: ReceivedSpan[] = [];
  for (let p = span.parentSpanId && byId.get(span.parentSpanId); p; p = p.parentSpanId ? byId.get(p.parentSpanId) : undefined) chain.push(p);
  return chain;
}

describe("tracing (OTLP/HTTP)", () => {
  it("one execute of a merge-videos node is one trace: gateway -> scheduler -> executor (ffmpeg) -> state-writer (Postgres)", async () => {
    const { pipeline } = await api.ok("POST", "/pipelines", { title: "trace" });
    await createCompletedClips(api, pipeline.id, [
      { id: "a", durationSeconds: 1, width: 320, height: 240 },
      { id: "b", durationSeconds: 1, width: 320, height: 240 },
    ]);
    await api.ok("POST", `/pipelines/${pipeline.id}/nodes`, { id: "m", title: "Merge", type: "merge-videos", inputs: { segments: ["a", "b"] } });
    const execute = await api.call("POST", `/pipelines/${pipeline.id}/nodes/m/execute`);
    expect(execute.status).toBe(200);
    const jobId = execute.body.job_id as string;
    expect((await api.waitForStatus(pipeline.id, "m", ["completed", "failed"])).status).toBe("completed");

    const executePath = `/v1/video_production/pipelines/${pipeline.id}/nodes/m/execute`;
    const traceOf = (spans: ReceivedSpan[]) => spans.find((s) => s.service === "gateway" && s.attributes["url.path"] === executePath)?.traceId;
    const complete = (spans: ReceivedSpan[]) => {
      const t = traceOf(spans);
      if (!t) return false;
      const inTrace = spans.filter((s) => s.traceId === t);
      const ids = new Set(inTrace.map((s) => s.spanId));
      // Parents end (and are exported) after their children: wait until only the root lacks its parent.
      if (inTrace.filter((s) => !s.parentSpanId || !ids.has(s.parentSpanId)).length !== 1) return false;
      // The completed fact's consume span with its UPDATE under it is exported last or nearly: wait for it too (a
      // progress tick's consume span also names the job, so "a process span of the job" alone can come first).
      return inTrace.some((s) => s.name === "ffmpeg") && completedFactOf(inTrace) !== undefined;
    };
    const completedFactOf = (inTrace: ReceivedSpan[]) => {
      const ids = new Map(inTrace.map((s) => [s.spanId, s]));
      const updates = inTrace.filter((s) => s.service === "state-writer" && s.scope === PG && isUpdate(s));
      return inTrace.find(
        (s) =>
          s.service === "state-writer" &&
          s.name.startsWith("process ") &&
          s.attributes["vp.job.id"] === jobId &&
          updates.some((q) => ancestors(q, ids).includes(s)),
      );
    };
    await otlp.waitFor(complete, 20_000);

    const traceId = traceOf(otlp.spans)!;
    const trace = otlp.spans.filter((s) => s.traceId === traceId);
    const byId = new Map(trace.map((s) => [s.spanId, s]));

    // All four backend services, each naming its service and version on the resource.
    expect(new Set(trace.map((s) => s.service))).toEqual(new Set(BACKEND));
    for (const name of BACKEND) {
      const version = (JSON.parse(readFileSync(join(REPO_ROOT, `services/${name}/package.json`), "utf8")) as { version: string }).version;
      expect(
        trace.filter((s) => s.service === name).every((s) => s.serviceVersion === version),
        `${name} service.version`,
      ).toBe(true);
    }
    // Every span about this job is in this one trace (no second trace started anywhere on the way).
    const aboutJob = otlp.spans.filter((s) => s.attributes["vp.job.id"] === jobId);
    expect(new Set(aboutJob.map((s) => s.traceId))).toEqual(new Set([traceId]));
    // One root: the gateway's HTTP server span; every other span's parent is in the trace.
    const roots = trace.filter((s) => !s.parentSpanId || !byId.has(s.parentSpanId));
    expect(roots.map((r) => [r.service, r.kind])).toEqual([["gateway", 2]]);

    // Scheduler's handling of the command, with pipelineId/nodeId/jobId.
    const scheduled = trace.find((s) => s.service === "scheduler" && s.name === `process ${bus.topology.consumers.scheduler.durable}`);
    expect(scheduled?.attributes).toMatchObject({ "vp.pipeline.id": pipeline.id, "vp.node.id": "m", "vp.job.id": jobId });

    // The executor's job span with ids and node type, and the ffmpeg run under it.
    const job = trace.find((s) => s.service === "executor-ffmpeg" && s.name === "job merge-videos");
    expect(job?.attributes).toMatchObject({ "vp.pipeline.id": pipeline.id, "vp.node.id": "m", "vp.job.id": jobId, "vp.node.type": "merge-videos" });
    const ffmpeg = trace.filter((s) => s.name === "ffmpeg");
    expect(ffmpeg.length).toBeGreaterThanOrEqual(1);
    for (const f of ffmpeg) {
      expect(f.service).toBe("executor-ffmpeg");
      expect(ancestors(f, byId)).toContain(job);
    }
    const consumed = trace.find((s) => s.service === "executor-ffmpeg" && s.name.startsWith("process ") && s.attributes["vp.node.type"] === "merge-videos");
    expect(ancestors(job!, byId)).toContain(consumed);

    // The state-writer's Postgres queries are under its handling spans (the completed fact's consume span,
    // the claims' serve spans), never loose.
    const pgSpans = trace.filter((s) => s.service === "state-writer" && s.scope === PG);
    expect(pgSpans.length).toBeGreaterThan(3);
    for (const q of pgSpans) {
      const handler = ancestors(q, byId).find((a) => a.service === "state-writer" && (a.name.startsWith("process ") || a.name.startsWith("serve ")));
      expect(handler, `${q.name} under a state-writer handling span`).toBeDefined();
    }
    expect(completedFactOf(trace), "the completed fact's consume span, with its UPDATE under it").toBeDefined();
  });
});

/** Sum of the samples of `name` whose labels include `labels` (Prometheus text format). */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  let total: number | undefined;
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[3] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) total = (total ?? 0) + Number(m[4]);
  }
  return total;
}

describe("metrics (/metrics on every service)", () => {
  const metricsUrl = (name: ServiceName) => {
    if (name === "gateway") return `${stack.baseUrl}/metrics`;
    const ready = stack.services.get(name)!.logs.find((l) => typeof l.healthPort === "number" && String(l.msg).endsWith("ready"));
    return `http://127.0.0.1:${ready!.healthPort as number}/metrics`;
  };
  const scrape = async (name: ServiceName) => {
    const res = await fetch(metricsUrl(name));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
    return res.text();
  };
  const scrapeAll = async () => Object.fromEntries(await Promise.all(BACKEND.map(async (n) => [n, await scrape(n)] as const))) as Record<ServiceName, string>;

  it("exposes the named series, and they move when a node runs", async () => {
    const jobConsumer = bus.topology.consumers.job("merge-videos");
    const { pipeline } = await api.ok("POST", "/pipelines", { title: "metrics" });
    await createCompletedClips(api, pipeline.id, [
      { id: "a", durationSeconds: 3, width: 640, height: 360 },
      { id: "b", durationSeconds: 3, width: 480, height: 270 },
    ]);
    await api.ok("POST", `/pipelines/${pipeline.id}/nodes`, {
      id: "m",
      title: "Merge",
      type: "merge-videos",
      inputs: { segments: ["a", "b"] },
      config: { reencode: "always" },
    });

    const before = await scrapeAll();
    const handled = (text: string, consumer: string) => sample(text, "vp_messages_handled_total", { consumer }) ?? 0;
    const jobsDone = (text: string) => sample(text, "vp_job_duration_seconds_count", { type: "merge-videos", outcome: "completed" }) ?? 0;
    const txCount = (text: string, kind: string) => sample(text, "vp_state_transaction_seconds_count", { kind }) ?? 0;
    for (const name of BACKEND) expect(before[name], name).toContain(`service="${name}"`);
    // The series exist before anything of this run happened (gauges at 0, pending read from JetStream).
    expect(sample(before["executor-ffmpeg"], "vp_jobs_in_flight", { type: "merge-videos" }) ?? 0).toBe(0);
    expect(sample(before["executor-ffmpeg"], "vp_consumer_pending_messages", { consumer: jobConsumer.durable })).toBe(0);
    expect(sample(before.scheduler, "vp_consumer_pending_messages", { consumer: bus.topology.consumers.scheduler.durable })).toBe(0);
    expect(sample(before["state-writer"], "vp_consumer_pending_messages", { consumer: bus.topology.consumers.stateWriter.durable })).toBeDefined();
    expect(sample(before.gateway, "vp_sse_connections")).toBe(0);

    // An open event stream is counted by the gateway.
    const watcher = openSse(`${api.root}/pipelines/${pipeline.id}/events`);
    await watcher.waitFor((events) => events.some((e) => e.event === "snapshot"));
    expect(sample(await scrape("gateway"), "vp_sse_connections")).toBe(1);

    await api.ok("POST", `/pipelines/${pipeline.id}/nodes/m/execute`);
    // While the merge runs: one job in flight, one message delivered and not acknowledged.
    let maxInFlight = 0;
    let maxAckPending = 0;
    for (;;) {
      const text = await scrape("executor-ffmpeg");
      maxInFlight = Math.max(maxInFlight, sample(text, "vp_jobs_in_flight", { type: "merge-videos" }) ?? 0);
      maxAckPending = Math.max(maxAckPending, sample(text, "vp_consumer_ack_pending_messages", { consumer: jobConsumer.durable }) ?? 0);
      if ((await api.node(pipeline.id, "m")).status === "completed") break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(maxInFlight).toBe(1);
    expect(maxAckPending).toBe(1);
    await watcher.close();
    await new Promise((r) => setTimeout(r, 300));

    const after = await scrapeAll();
    expect(handled(after.scheduler, bus.topology.consumers.scheduler.durable)).toBe(handled(before.scheduler, bus.topology.consumers.scheduler.durable) + 1);
    expect(handled(after["executor-ffmpeg"], jobConsumer.durable)).toBe(handled(before["executor-ffmpeg"], jobConsumer.durable) + 1);
    expect(handled(after["state-writer"], bus.topology.consumers.stateWriter.durable)).toBeGreaterThan(
      handled(before["state-writer"], bus.topology.consumers.stateWriter.durable),
    );
    expect(after["executor-ffmpeg"]).toContain(`vp_messages_handled_total{subject="${jobConsumer.filterSubject}"`);
    expect(sample(after["executor-ffmpeg"], "vp_messages_failed_total") ?? 0).toBe(sample(before["executor-ffmpeg"], "vp_messages_failed_total") ?? 0);
    expect(after["executor-ffmpeg"]).toMatch(/# TYPE vp_messages_failed_total counter/);
    expect(jobsDone(after["executor-ffmpeg"])).toBe(jobsDone(before["executor-ffmpeg"]) + 1);
    expect(sample(after["executor-ffmpeg"], "vp_job_duration_seconds_sum", { type: "merge-videos", outcome: "completed" })!).toBeGreaterThan(
      sample(before["executor-ffmpeg"], "vp_job_duration_seconds_sum", { type: "merge-videos", outcome: "completed" }) ?? 0,
    );
    expect(sample(after["executor-ffmpeg"], "vp_jobs_in_flight", { type: "merge-videos" })).toBe(0);
    expect(txCount(after["state-writer"], "claim-queued")).toBe(txCount(before["state-writer"], "claim-queued") + 1);
    expect(txCount(after["state-writer"], "claim-running")).toBe(txCount(before["state-writer"], "claim-running") + 1);
    expect(txCount(after["state-writer"], "completed")).toBe(txCount(before["state-writer"], "completed") + 1);
    // The transaction alone: every applied transition of this execute (claim-queued, claim-running, progress ticks, completed).
    const dbTx = (text: string) => sample(text, "vp_state_db_transaction_seconds_count", { outcome: "applied" }) ?? 0;
    expect(dbTx(after["state-writer"]) - dbTx(before["state-writer"])).toBeGreaterThanOrEqual(3);
    expect(sample(after.gateway, "vp_sse_connections")).toBe(0);
  });
});
