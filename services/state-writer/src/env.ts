import { z } from "zod";
import { DEFAULT_DATABASE_URL, roleUrl } from "@vp/db";
import { natsCredentialsEnv } from "@vp/runtime";

export const Env = z.object({
  /** Postgres as vp_state_writer: the only role that may write status, metadata and output. */
  DATABASE_URL: z.string().default(roleUrl(process.env.DATABASE_ADMIN_URL ?? DEFAULT_DATABASE_URL, "vp_state_writer")),
  /** NATS with JetStream. */
  NATS_URL: z.string().default("nats://127.0.0.1:4222"),
  ...natsCredentialsEnv,
  /** Prefix of every stream and subject; "" in production, random per test run. */
  BUS_NAMESPACE: z.string().default(""),
  /** Port of GET /health and /ready. */
  HEALTH_PORT: z.coerce.number().int().min(0).default(3072),
  LOG_LEVEL: z.string().default("info"),
  /**
   * Fault injection, for the fault suite only (tests/faults/state-writer-crash.test.ts): "after-commit-before-publish"
   * SIGKILLs the process once, after a transition committed and before its event is published. Unset: inert.
   */
  VP_FAULT_POINT: z.enum(["after-commit-before-publish"]).optional(),
  /** With VP_FAULT_POINT: only a change whose event id contains this (e.g. ":completed") triggers it. */
  VP_FAULT_POINT_MATCH: z.string().default(""),
  /**
   * Group commit: at most this many queued transitions of one pipeline share one transaction (a savepoint each,
   * one COMMIT). 1 = one transaction per transition.
   */
  STATE_WRITER_BATCH_MAX: z.coerce.number().int().min(1).default(64),
  /**
   * Connections of the progress-tick pool (sessions with synchronous_commit off; beside the main pool). With
   * STATE_WRITER_BATCH_MAX=1 also the most ticks written at once (one statement each); batched, ticks of many nodes
   * share a multi-row statement and at most 2 run at once.
   */
  STATE_WRITER_TICK_CONNECTIONS: z.coerce.number().int().min(1).default(8),
  /** Time from SIGTERM to exit (in-flight work finishes or is handed back within it); under the pod's terminationGracePeriodSeconds. */
  SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).default(25_000),
  /** Result-cache entries neither made nor hit for this many days are evicted. */
  CACHE_IDLE_DAYS: z.coerce.number().positive().default(30),
  /**
   * Most bytes of files kept only for the cache after their pipeline or node was deleted (default 100 GiB); past it
   * the least recently used of those entries are evicted, and the gateway then deletes their files.
   */
  CACHE_MAX_KEPT_BYTES: z.coerce
    .number()
    .int()
    .min(0)
    .default(100 * 1024 ** 3),
  /** How often cache eviction runs. */
  CACHE_EVICT_INTERVAL_MS: z.coerce
    .number()
    .int()
    .positive()
    .default(60 * 60_000),
});
export type Env = z.infer<typeof Env>;
export const loadEnv = (source: NodeJS.ProcessEnv = process.env): Env => Env.parse(source);
