import { describe, expect, it } from "vitest";
import { initMetrics, metrics, metricsText, timed, watchConsumer } from "./index";

/** The value of the one sample of `name` with exactly these labels (label order does not matter). */
function value(body: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of body.split("\n")) {
    const m = /^(\w+)\{([^}]*)\} (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...m[2]!.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.keys(got).length === Object.keys(labels).length && Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[3]);
  }
  return undefined;
}

describe("metrics", () => {
  it("exposes every named series with the service label, consumer counts read at scrape time", async () => {
    initMetrics("metrics-test");
    metrics.messagesHandled.inc({ subject: "vp.job.asset", consumer: "executor-asset" });
    metrics.jobsInFlight.inc({ type: "asset" });
    let reads = 0;
    const unwatch = watchConsumer("VP_JOBS", "executor-asset", async () => ({ pending: 7 + reads++, ackPending: 2 }));
    await timed(metrics.stateTransactionSeconds, { kind: "completed" }, async () => undefined);
    await expect(timed(metrics.stateTransactionSeconds, { kind: "failed" }, async () => Promise.reject(new Error("x")))).rejects.toThrow("x");

    const { contentType, body } = await metricsText();
    expect(contentType).toMatch(/^text\/plain/);
    expect(value(body, "vp_messages_handled_total", { subject: "vp.job.asset", consumer: "executor-asset", service: "metrics-test" })).toBe(1);
    expect(value(body, "vp_jobs_in_flight", { type: "asset", service: "metrics-test" })).toBe(1);
    expect(value(body, "vp_consumer_pending_messages", { stream: "VP_JOBS", consumer: "executor-asset", service: "metrics-test" })).toBe(7);
    expect(value(body, "vp_consumer_ack_pending_messages", { stream: "VP_JOBS", consumer: "executor-asset", service: "metrics-test" })).toBe(2);
    expect(value(body, "vp_state_transaction_seconds_count", { kind: "completed", outcome: "ok", service: "metrics-test" })).toBe(1);
    expect(value(body, "vp_state_transaction_seconds_count", { kind: "failed", outcome: "error", service: "metrics-test" })).toBe(1);
    for (const name of ["vp_messages_failed_total", "vp_job_duration_seconds", "vp_sse_connections"]) expect(body).toContain(`# TYPE ${name} `);
    await new Promise((r) => setTimeout(r, 600));
    expect(value((await metricsText()).body, "vp_consumer_pending_messages", { stream: "VP_JOBS", consumer: "executor-asset", service: "metrics-test" })).toBe(
      8,
    );
    unwatch();
  });
});
