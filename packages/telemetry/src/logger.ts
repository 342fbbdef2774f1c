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

/** Control characters (C0, DEL, C1), line and paragraph separators, bidi controls: what can forge or hide a line in a terminal. */
const UNSAFE_IN_TERMINAL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * `value` as text safe to print on a terminal line: unsafe characters escaped (`\u001b`), at most `max`
 * characters (the rest counted). For caller-controlled values (a token's subject, a request id) in logs.
 */
export function logText(value: unknown, max = 200): string {
  const text = String(value).replace(UNSAFE_IN_TERMINAL, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`);
  return text.length > max ? `${text.slice(0, max)}…(+${text.length - max} chars)` : text;
}

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
    ...(pretty ? { transport: { target: "pino-pretty", options: { colorize: true, translateTime: "HH:MM:ss.l", ignore: "pid,hostname,service" } } } : {}),
  };
  return options.destination && !pretty ? pino(pinoOptions, options.destination) : pino(pinoOptions);
}

/**
 * Writes out every line the logger still holds before the process dies on purpose (a SIGKILL loses them). pino's
 * stdout stream writes asynchronously: its flush() answers at once, and flushSync() writes the queued lines but not
 * the one already being written, so this also waits (up to `timeoutMs`) until that write has finished.
 */
export async function flushLogs(logger: Logger, timeoutMs = 2000): Promise<void> {
  const stream = (logger as unknown as Record<symbol, { flushSync?: () => void; _writing?: boolean } | undefined>)[pino.symbols.streamSym];
  const flushSync = () => {
    try {
      stream?.flushSync?.();
    } catch {
      // A write in flight or nothing to write: the wait below covers it.
    }
  };
  flushSync();
  const deadline = Date.now() + timeoutMs;
  while (stream?._writing && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
  flushSync();
}
