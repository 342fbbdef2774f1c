import { z } from "zod";
import { DEFAULT_DATABASE_URL, roleUrl } from "@vp/db";

const admin = () => process.env.DATABASE_ADMIN_URL ?? DEFAULT_DATABASE_URL;

export const Env = z.object({
  /** HTTP port of the API and SSE stream. */
  PORT: z.coerce.number().int().min(0).default(3061),
  /** Postgres as vp_reader (every read). */
  DATABASE_URL: z.string().default(roleUrl(admin(), "vp_reader")),
  /** Postgres as vp_editor (structure writes: title, type, inputs, config, asset). */
  EDITOR_DATABASE_URL: z.string().default(roleUrl(admin(), "vp_editor")),
  NATS_URL: z.string().default("nats://127.0.0.1:4222"),
  /** Prefix of every stream and subject; "" in production, random per test run. */
  BUS_NAMESPACE: z.string().default(""),
  /** Root directory of the local-disk storage backend. */
  STORAGE_ROOT: z.string().default(".data/storage"),
  /** Largest accepted asset upload in bytes (default 2 GiB). */
  MAX_UPLOAD_BYTES: z.coerce.number().int().positive().default(2 * 1024 ** 3),
  /** How long an execute request waits for the scheduler's verdict before answering 202. */
  EXECUTE_VERDICT_TIMEOUT_MS: z.coerce.number().int().positive().default(10_000),
  /** Comma-separated origins allowed by CORS (the editor). */
  CORS_ORIGINS: z.string().default("http://localhost:3065"),
  LOG_LEVEL: z.string().default("info"),
  /** Time from SIGTERM to exit (in-flight work finishes or is handed back within it); under the pod's terminationGracePeriodSeconds. */
  SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).default(25_000),
});
export type Env = z.infer<typeof Env>;
export const loadEnv = (source: NodeJS.ProcessEnv = process.env): Env => Env.parse(source);
