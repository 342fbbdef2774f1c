import type { z } from "zod";
import { executorEnvSchema } from "@vp/runtime";

export const Env = executorEnvSchema({ workRoot: ".data/work/executor-ai", healthPort: 3074 });
export type Env = z.infer<typeof Env>;
export const loadEnv = (source: NodeJS.ProcessEnv = process.env): Env => Env.parse(source);
