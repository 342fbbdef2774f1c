import { z } from "zod";
import { DEFAULT_DATABASE_URL, roleUrl } from "@vp/db";

export const Env = z.object({
  /** Postgres as vp_reader: the scheduler decides, the state-writer writes. */
  DATABASE_URL: z.string().default(roleUrl(process.env.DATABASE_ADMIN_URL ?? DEFAULT_DATABASE_URL, "vp_reader")),
  NATS_URL: z.string().default("nats://127.0.0.1:4222"),
  /** Prefix of every stream and subject; "" in production, random per test run. */
  BUS_NAMESPACE: z.string().default(""),
  HEALTH_PORT: z.coerce.number().int().min(0).default(3071),
  LOG_LEVEL: z.string().default("info"),
});
export type Env = z.infer<typeof Env>;
export const loadEnv = (source: NodeJS.ProcessEnv = process.env): Env => Env.parse(source);
