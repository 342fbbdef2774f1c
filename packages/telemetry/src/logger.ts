import { hostname } from "node:os";
import { pino } from "pino";
import { traceIds } from "./trace-context";

export type Logger = pino.Logger;

export interface LoggerOptions {
  /** Becomes the `service` field of every line. */
  service: string;
  /** Defaults to env LOG_LEVEL, then "info". */
  level?: string;
  /** Human-readable lines through pino-pretty (for `npm start` in one terminal); also env LOG_PRETTY=1. */
  pretty?: boolean;
  /** Where lines go (tests); default stdout. Ignored when pretty. */
  destination?: pino.DestinationStream;
}

/** Paths whose values never reach a log line (provider keys, auth headers, passwords). */
export const REDACT_PATHS = [
  "apiKey",
  "*.apiKey",
  "authorization",
  "*.authorization",
  "headers.authorization",
  "*.headers.authorization",
  "password",
  "*.password",
  "secret",
  "*.secret",
];

/**
 * JSON logs, object first: `logger.info({ pipelineId, nodeId }, "job started")`. Every line carries the
 * traceId/spanId of the active OpenTelemetry span, so logs and Jaeger traces join on traceId.
 */
export function createLogger(options: LoggerOptions): Logger {
  const pretty = options.pretty ?? process.env.LOG_PRETTY === "1";
  const pinoOptions: pino.LoggerOptions = {
    base: { service: options.service, pid: process.pid, hostname: hostname() },
    level: options.level ?? process.env.LOG_LEVEL ?? "info",
    redact: { paths: REDACT_PATHS, censor: "[redacted]" },
    mixin: () => traceIds(),
    timestamp: pino.stdTimeFunctions.isoTime,
    ...(pretty
      ? { transport: { target: "pino-pretty", options: { colorize: true, translateTime: "HH:MM:ss.l", ignore: "pid,hostname,service" } } }
      : {}),
  };
  return options.destination && !pretty ? pino(pinoOptions, options.destination) : pino(pinoOptions);
}
