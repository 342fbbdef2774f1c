import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger, extractTraceContext, injectTraceHeaders, startTracing, traceIds, withSpan, type Tracing } from "./index";

class MapHeaders {
  readonly m = new Map<string, string>();
  get(k: string) {
    return this.m.get(k) ?? "";
  }
  set(k: string, v: string) {
    this.m.set(k, v);
  }
}

function capture() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split("\n")) if (l.trim()) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { lines, destination };
}

describe("telemetry", () => {
  let tracing: Tracing;
  beforeAll(() => {
    delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
    tracing = startTracing({ serviceName: "telemetry-test" });
  });
  afterAll(() => tracing.shutdown());

  it("adds traceId/spanId of the active span to every log line and redacts secrets", async () => {
    const { lines, destination } = capture();
    const logger = createLogger({ service: "svc", level: "info", destination });
    logger.info({ provider: { apiKey: "sk-1" }, headers: { authorization: "Bearer x" }, db: { password: "p" } }, "outside");
    const ids = await withSpan("work", {}, async () => {
      logger.info({ pipelineId: "p1" }, "inside");
      return traceIds();
    });
    expect(lines[0]).toMatchObject({
      service: "svc",
      msg: "outside",
      provider: { apiKey: "[redacted]" },
      headers: { authorization: "[redacted]" },
      db: { password: "[redacted]" },
    });
    expect(lines[0]!.traceId).toBeUndefined();
    expect(ids.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(lines[1]).toMatchObject({ msg: "inside", pipelineId: "p1", traceId: ids.traceId, spanId: ids.spanId });
  });

  it("carries the trace context through headers", async () => {
    const headers = new MapHeaders();
    const producer = await withSpan("produce", {}, async () => {
      injectTraceHeaders(headers);
      return traceIds();
    });
    expect(headers.get("traceparent")).toBe(`00-${producer.traceId}-${producer.spanId}-01`);
    const consumer = await withSpan("consume", { parent: extractTraceContext(headers) }, async () => traceIds());
    expect(consumer.traceId).toBe(producer.traceId);
    expect(consumer.spanId).not.toBe(producer.spanId);
    expect(traceIds(extractTraceContext(undefined))).toEqual({});
    expect(traceIds(extractTraceContext(new MapHeaders()))).toEqual({});
  });

  it("withSpan rethrows and ends the span", async () => {
    await expect(withSpan("boom", {}, async () => Promise.reject(new Error("nope")))).rejects.toThrow("nope");
  });
});
