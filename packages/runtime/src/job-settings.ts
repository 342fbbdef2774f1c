import { z } from "zod";
import { NODE_CATALOG, NODE_TYPES, type NodeType, type NodeTypeDefinition, type TopologyOptions } from "@vp/contracts";

/**
 * The job consumers' settings, read by the scheduler (which creates every job consumer at start, so a fresh NATS
 * has each executor's consumer before any executor runs) and by the executors (which consume them). Both must see
 * the same values: in deploy/k8s they come from one ConfigMap, vp-jobs.
 */

/** `<TYPE>_CONCURRENCY`: jobs of that node type in flight across all replicas (its consumer's max ack pending). */
export const concurrencyVar = (type: NodeType) => `${type.toUpperCase().replace(/-/g, "_")}_CONCURRENCY`;

/** Per-type defaults where JOB_CONCURRENCY does not fit (the catalog's `concurrency`, e.g. render-code runs a Chromium). */
export const JOB_CONCURRENCY_DEFAULTS: Partial<Record<NodeType, number>> = Object.fromEntries(
  NODE_TYPES.flatMap((t) => {
    const definition: NodeTypeDefinition = NODE_CATALOG[t];
    return definition.concurrency ? [[t, definition.concurrency]] : [];
  }),
);

const concurrency = z.coerce.number().int().min(1).optional();

export const jobSettingsEnv = {
  /** How long a job may go without a heartbeat before JetStream hands it to another replica. */
  JOB_ACK_WAIT_MS: z.coerce.number().int().min(1000).default(30_000),
  /** Deliveries of one job before the node fails with the last error. */
  JOB_MAX_ATTEMPTS: z.coerce.number().int().min(1).default(5),
  /** Jobs of one node type in flight across all replicas, unless its `<TYPE>_CONCURRENCY` says otherwise. */
  JOB_CONCURRENCY: z.coerce.number().int().min(1).default(2),
  ...(Object.fromEntries(NODE_TYPES.map((t) => [concurrencyVar(t), concurrency])) as Record<`${string}_CONCURRENCY`, typeof concurrency>),
};

export interface JobSettings {
  JOB_ACK_WAIT_MS: number;
  JOB_MAX_ATTEMPTS: number;
  JOB_CONCURRENCY: number;
}

/** The topology options of the job consumers, from the settings above. */
export function jobTopologyOptions(env: JobSettings): Required<Pick<TopologyOptions, "jobAckWaitMs" | "jobMaxAttempts" | "jobConcurrency">> {
  const values = env as unknown as Record<string, number | undefined>;
  return {
    jobAckWaitMs: env.JOB_ACK_WAIT_MS,
    jobMaxAttempts: env.JOB_MAX_ATTEMPTS,
    jobConcurrency: Object.fromEntries(NODE_TYPES.map((t) => [t, values[concurrencyVar(t)] ?? JOB_CONCURRENCY_DEFAULTS[t] ?? env.JOB_CONCURRENCY])) as Record<
      NodeType,
      number
    >,
  };
}
