import {
  type Attributes,
  type Context,
  type Span,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  ROOT_CONTEXT,
  context,
  isSpanContextValid,
  trace,
} from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { tracing } from "@opentelemetry/sdk-node";

/**
 * The part of NATS `MsgHdrs` the trace context needs. Structural, so this package does not depend on the
 * NATS client; `MsgHdrs` from @nats-io/nats-core satisfies it (its `get` returns "" for a missing key).
 */
export interface HeaderCarrier {
  get(key: string): string | undefined;
  set(key: string, value: string): void;
}

// A module-level propagator rather than the global one: injecting/extracting `traceparent` must work
// even in a process (or test) that never called startTracing().
const propagator = new W3CTraceContextPropagator();

const tracer = () => trace.getTracer("@vp/telemetry");

/** Writes `traceparent` (and `tracestate`) of `ctx` (default: the active context) into NATS headers. */
export function injectTraceHeaders(headers: HeaderCarrier, ctx: Context = context.active()): void {
  propagator.inject(ctx, headers, {
    set: (carrier, key, value) => carrier.set(key, value),
  });
}

/** The context a message's `traceparent` names, or ROOT_CONTEXT when it has none. */
export function extractTraceContext(headers?: HeaderCarrier | null): Context {
  if (!headers) return ROOT_CONTEXT;
  return propagator.extract(ROOT_CONTEXT, headers, {
    get: (carrier, key) => carrier.get(key) || undefined,
    keys: () => ["traceparent", "tracestate"],
  });
}

export interface WithSpanOptions {
  /** Parent context (e.g. extractTraceContext(msg.headers)); default: the active context. */
  parent?: Context;
  attributes?: Attributes;
  kind?: SpanKind;
}

/**
 * Runs `fn` inside a new active span: records a thrown exception, sets ERROR status, always ends the span.
 * Without startTracing() the tracer is a no-op that still carries the parent's ids. When startTracing() found
 * no exporter, the span only carries ids (see idsOnlySpan). Exported spans get sub-millisecond start and end
 * times (the SDK's default start is Date.now()), so a trace shows the hops between processes.
 */
export async function withSpan<T>(name: string, options: WithSpanOptions, fn: (span: Span) => Promise<T>): Promise<T> {
  const parent = options.parent ?? context.active();
  if (idsOnly) {
    const light = idsOnlySpan(parent);
    return context.with(trace.setSpan(parent, light), () => fn(light));
  }
  const span = tracer().startSpan(name, { attributes: options.attributes, kind: options.kind ?? SpanKind.INTERNAL, startTime: preciseNow() }, parent);
  try {
    return await context.with(trace.setSpan(parent, span), () => fn(span));
  } catch (err) {
    recordError(span, err);
    throw err;
  } finally {
    span.end(preciseNow());
  }
}

/** Epoch milliseconds with sub-millisecond resolution (what the SDK takes as a span time). */
const preciseNow = () => performance.timeOrigin + performance.now();

let idsOnly = false;

/**
 * Called by startTracing: `true` when no exporter is configured. Spans would then be built in full (attributes,
 * times, events) only to be dropped at their end, on every message of every hop; withSpan mints ids instead,
 * which is all that logs (traceId/spanId) and the traceparent headers need.
 */
export function setIdsOnlySpans(on: boolean): void {
  idsOnly = on;
}

/**
 * A non-recording span with a new span id, in the parent's trace (a new trace id without one), sampled like the
 * SDK's default sampler (ParentBased(AlwaysOn)) would: a process that does export keeps recording the trace.
 */
function idsOnlySpan(parent: Context): Span {
  const sc = trace.getSpanContext(parent);
  const valid = !!sc && isSpanContextValid(sc);
  return trace.wrapSpanContext({
    traceId: valid ? sc.traceId : ids.generateTraceId(),
    spanId: ids.generateSpanId(),
    traceFlags: valid ? sc.traceFlags & TraceFlags.SAMPLED : TraceFlags.SAMPLED,
    ...(valid && sc.traceState ? { traceState: sc.traceState } : {}),
  });
}

/** The SDK's own id generator (what its tracer uses), for the ids-only spans. */
const ids = new tracing.RandomIdGenerator();

/** Marks the span failed with this error (for errors a caller handles instead of rethrowing). */
export function recordError(span: Span, err: unknown): void {
  span.recordException(err instanceof Error ? err : new Error(String(err)));
  span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
}

/** The active OpenTelemetry context (ROOT_CONTEXT when tracing was never started). */
export function activeContext(): Context {
  return context.active();
}

/**
 * Runs `fn` with `ctx` as the active context: work that one caller queued and another caller's task runs (a group
 * commit, a shared statement) keeps the queuing caller's trace, so its queries and its published event's
 * traceparent belong to that caller's trace, not to whichever request happened to start the batch.
 */
export function runInContext<T>(ctx: Context, fn: () => T): T {
  return context.with(ctx, fn);
}

/** traceId/spanId of the span in `ctx` (default: active); empty when there is no valid span. */
export function traceIds(ctx: Context = context.active()): { traceId?: string; spanId?: string } {
  const sc = trace.getSpanContext(ctx);
  if (!sc || !isSpanContextValid(sc)) return {};
  return { traceId: sc.traceId, spanId: sc.spanId };
}

export { SpanKind, type Context, type Span };
