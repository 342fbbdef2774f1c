import { z } from "zod";
import { DEFAULT_DATABASE_URL, roleUrl } from "@vp/db";
import { jobSettingsEnv, natsCredentialsEnv } from "@vp/runtime";

export const Env = z.object({
  /** Postgres as vp_reader: the scheduler decides, the state-writer writes. */
  DATABASE_URL: z.string().default(roleUrl(process.env.DATABASE_ADMIN_URL ?? DEFAULT_DATABASE_URL, "vp_reader")),
  NATS_URL: z.string().default("nats://127.0.0.1:4222"),
  ...natsCredentialsEnv,
  /** Prefix of every stream and subject; "" in production, random per test run. */
  BUS_NAMESPACE: z.string().default(""),
  /**
   * Copies of every stream across the NATS cluster (JetStream num_replicas). The scheduler manages the streams and
   * keeps this on every start: 1 for a single server, 3 for a 3-server cluster (a stream survives one server's loss).
   */
  STREAM_REPLICAS: z.coerce.number().int().min(1).max(5).default(1),
  /** The job consumers' settings (ack wait, attempts, concurrency per type): the scheduler creates every job consumer. */
  ...jobSettingsEnv,
  /** How often the reconciler looks for in_progress nodes whose executor stopped heart-beating. */
  RECONCILE_INTERVAL_MS: z.coerce.number().int().min(100).default(15_000),
  /** Silence after which an in_progress node is revived (three job ack waits by default). */
  STALLED_AFTER_MS: z.coerce.number().int().min(100).default(90_000),
  /** Attempts after which a node that keeps losing its executor fails instead. */
  MAX_NODE_ATTEMPTS: z.coerce.number().int().min(1).default(8),
  HEALTH_PORT: z.coerce.number().int().min(0).default(3071),
  LOG_LEVEL: z.string().default("info"),
  /** Time from SIGTERM to exit (in-flight work finishes or is handed back within it); under the pod's terminationGracePeriodSeconds. */
  SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).default(25_000),
});
export type Env = z.infer<typeof Env>;
export const loadEnv = (source: NodeJS.ProcessEnv = process.env): Env => Env.parse(source);
