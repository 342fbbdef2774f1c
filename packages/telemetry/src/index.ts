export { createLogger, flushLogs, logText, REDACT_PATHS, type Logger, type LoggerOptions } from "./logger";
export { formatLogLine } from "./pretty-line";
export { startTracing, type Tracing } from "./tracing";
export {
  injectTraceHeaders,
  extractTraceContext,
  withSpan,
  traceIds,
  recordError,
  activeContext,
  runInContext,
  SpanKind,
  type HeaderCarrier,
  type WithSpanOptions,
  type Context,
  type Span,
} from "./trace-context";
export { metrics, registry, initMetrics, watchConsumer, timed, metricsText, type ConsumerInfoSample } from "./metrics";
