import "reflect-metadata";
import { Controller, Module } from "@nestjs/common";
import { Ctx, EventPattern, Payload } from "@nestjs/microservices";
import { z } from "zod";
import { createTopology, EXECUTORS, type ExecutorName, JobMessage, type NodeType, nodeTypesOf } from "@vp/contracts";
import {
  BUS_SERVICES,
  createWorker,
  ensureTopology,
  JetStreamServer,
  type BusService,
  startHealthServer,
  type ConsumeContext,
  type InvalidMessageInfo,
} from "@vp/bus";
import { createPool, DEFAULT_DATABASE_URL, roleUrl } from "@vp/db";
import { createStorageFromEnv, type Storage } from "@vp/storage";
import { createLogger, initMetrics, startTracing, type Logger } from "@vp/telemetry";
import { createJobRunner } from "./job-runner";
import { pathSetting, storageSetting } from "./env";
import { jobSettingsEnv, jobTopologyOptions } from "./job-settings";
import { DEFAULT_SHUTDOWN_GRACE_MS, registerShutdown, workGraceMs } from "./lifecycle";
import { connectServiceBus, natsCredentialsEnv } from "./service-bus";
import type { WorkFunction } from "./work";

/** Environment every executor reads (each service may extend it). */
export function executorEnvSchema(defaults: { workRoot: string; healthPort: number }) {
  return z.object({
    /** Postgres as vp_reader: executors report results as facts, the state-writer writes them. */
    DATABASE_URL: z.string().default(roleUrl(process.env.DATABASE_ADMIN_URL ?? DEFAULT_DATABASE_URL, "vp_reader")),
    NATS_URL: z.string().default("nats://127.0.0.1:4222"),
    ...natsCredentialsEnv,
    /** Prefix of every stream and subject; "" in production, random per test run. */
    BUS_NAMESPACE: z.string().default(""),
    /** Storage backend, local or s3 (createStorageFromEnv below reads it with the S3_* settings). */
    STORAGE: storageSetting(),
    /** Root directory of the local-disk storage backend (shared with the gateway); made absolute at load. */
    STORAGE_ROOT: pathSetting(".data/storage"),
    /** Scratch space: one directory per job attempt, removed afterwards; made absolute at load. */
    WORK_ROOT: pathSetting(defaults.workRoot),
    /** The job consumers' settings, shared with the scheduler (job-settings.ts). */
    ...jobSettingsEnv,
    /** Port of GET /health and /ready. */
    HEALTH_PORT: z.coerce.number().int().min(0).default(defaults.healthPort),
    LOG_LEVEL: z.string().default("info"),
    /**
     * Time from SIGTERM to exit: in-flight jobs may finish during all of it but a reserve (a fifth, at most
     * 5 s), then they are interrupted and handed back to the stream for another replica. Keep it under the
     * pod's terminationGracePeriodSeconds.
     */
    SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).default(DEFAULT_SHUTDOWN_GRACE_MS),
  });
}
export type ExecutorEnv = z.infer<ReturnType<typeof executorEnvSchema>>;

export const jobPattern = (type: NodeType) => `job.${type}`;

/** A Nest module whose one controller binds every served job consumer to the shared job runner. */
function executorModule(types: readonly NodeType[], handleJob: (job: JobMessage, ctx: ConsumeContext) => Promise<void>) {
  @Controller()
  class ExecutorController {
    @EventPattern(types.map(jobPattern))
    run(@Payload() job: JobMessage, @Ctx() ctx: ConsumeContext) {
      return handleJob(job, ctx);
    }
  }
  @Module({ controllers: [ExecutorController] })
  class ExecutorModule {}
  return ExecutorModule;
}

/**
 * Wires an executor process: logger, tracing, pool, NATS, its job consumers (declared by the executor that
 * owns them), storage, the job runner and a NestJS microservice on the JetStream transport; registers
 * shutdown in reverse order. The service's main.ts only names its types and work functions.
 */
export async function runExecutor(options: {
  service: string;
  /** The NATS identity (user permissions and reply inbox, @vp/bus busPermissions) it runs as; default: `service`. */
  busService?: BusService;
  /** The node types it serves; default: the catalog's types for this executor (nodeTypesOf). */
  types?: readonly NodeType[];
  env: ExecutorEnv;
  works: (deps: { storage: Storage; logger: Logger }) => Partial<Record<NodeType, WorkFunction>>;
  beforeStart?: (deps: { logger: Logger }) => Promise<void>;
}) {
  const { service, env } = options;
  const types = options.types ?? ((EXECUTORS as readonly string[]).includes(service) ? nodeTypesOf(service as ExecutorName) : []);
  if (types.length === 0) throw new Error(`${service} serves no node type: name its types, or add them to the catalog under this executor`);
  const jobs = jobTopologyOptions(env);
  const concurrencyOf = (type: NodeType) => jobs.jobConcurrency[type];
  const logger = createLogger({ service, level: env.LOG_LEVEL });
  const tracing = startTracing({ serviceName: service });
  initMetrics(service);
  await options.beforeStart?.({ logger });
  const db = createPool({ url: env.DATABASE_URL, applicationName: service });
  const topology = createTopology({ namespace: env.BUS_NAMESPACE, ...jobs });
  const busService = options.busService ?? ((BUS_SERVICES as readonly string[]).includes(service) ? (service as BusService) : undefined);
  if (!busService) throw new Error(`${service} is no bus service: name the NATS identity it runs as (busService)`);
  const bus = await connectServiceBus({ service: busService, env, topology, logger });
  // Streams are the scheduler's to create (its NATS user may; an executor's may not). The scheduler creates every
  // job consumer too, from the same settings; an executor makes sure of its own (the same config: no change).
  await ensureTopology(bus, topology, { consumers: types.map((t) => topology.consumers.job(t)), streams: "expect" });
  const storage = createStorageFromEnv({ ...process.env, STORAGE_ROOT: env.STORAGE_ROOT });
  const works = options.works({ storage, logger });
  const unserved = types.filter((type) => !works[type]);
  if (unserved.length > 0) throw new Error(`${service} subscribes to ${unserved.join(", ")} but has no work function for it: register its handler in main.ts`);
  const runner = createJobRunner({ bus, topology, db, storage, workRoot: env.WORK_ROOT, works });

  const app = await createWorker({
    module: executorModule(types, runner.handleJob),
    logger,
    strategy: new JetStreamServer({
      bus,
      logger,
      stopTimeoutMs: workGraceMs(env.SHUTDOWN_GRACE_MS),
      bindings: Object.fromEntries(
        types.map((type) => [
          jobPattern(type),
          {
            consumer: topology.consumers.job(type),
            schema: JobMessage,
            concurrency: concurrencyOf(type),
            onGiveUp: (job: JobMessage, info: { reason: string; ctx?: { attempt: number } }) => runner.failJob(job, info.reason, info.ctx?.attempt ?? 1),
            onInvalid: (info: InvalidMessageInfo) => runner.rejectInvalidJob(info, logger),
          },
        ]),
      ),
    }),
  });
  const health = await startHealthServer(env.HEALTH_PORT, () => !bus.nc.isClosed());
  logger.info({ healthPort: health.port, types, concurrency: Object.fromEntries(types.map((t) => [t, concurrencyOf(t)])) }, `${service} ready`);

  registerShutdown(
    logger,
    [
      ["stop consuming", () => app.close()],
      ["drain NATS", () => bus.close()],
      ["close pool", () => db.end()],
      ["stop health", () => health.close()],
      ["flush traces", () => tracing.shutdown()],
    ],
    { graceMs: env.SHUTDOWN_GRACE_MS },
  );
}
