import { z } from "zod";
import { executorEnvSchema } from "@vp/runtime";

export const Env = executorEnvSchema({ workRoot: ".data/work/executor-ffmpeg", healthPort: 3073 }).extend({
  /** Upper bound of one ffmpeg run. */
  FFMPEG_TIMEOUT_MS: z.coerce.number().int().min(1000).default(30 * 60_000),
});
export type Env = z.infer<typeof Env>;
export const loadEnv = (source: NodeJS.ProcessEnv = process.env): Env => Env.parse(source);
