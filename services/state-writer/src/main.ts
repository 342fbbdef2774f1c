import "reflect-metadata";
import { createTopology, StateEvent } from "@vp/contracts";
import { ensureTopology, createWorker, JetStreamServer, startHealthServer, serve, type InvalidMessageInfo } from "@vp/bus";
import { createPool, createTickPool, observeStateTransactions } from "@vp/db";
import { connectServiceBus, registerShutdown, workGraceMs } from "@vp/runtime";
import { createLogger, initMetrics, metrics, startTracing, timed } from "@vp/telemetry";
import { loadEnv } from "./env";
import { createApplyStateEvent, createRejectInvalidStateEvent } from "./handlers/apply-state-event";
import { createBatchingQueue, createCommittedPublisher } from "./handlers/committed";
import { createTransitionHandler } from "./handlers/transition";
import { createPipelineMetadataLog } from "./handlers/pipeline-metadata";
import { createTickQueue } from "./handlers/ticks";
import { startCacheEviction } from "./handlers/cache-eviction";
import { STATE_PATTERN, StateWriterModule } from "./state-writer.module";
import { createRunRecordHandler } from "./handlers/run-record";

const env = loadEnv();
const logger = createLogger({ service: "state-writer", level: env.LOG_LEVEL });
const tracing = startTracing({ serviceName: "state-writer" });
initMetrics("state-writer");
const db = createPool({ url: env.DATABASE_URL, applicationName: "state-writer" });
// Progress ticks only: its sessions commit with synchronous_commit off (status changes stay on `db`, durable).
const tickDb = createTickPool({ url: env.DATABASE_URL, applicationName: "state-writer-ticks", max: env.STATE_WRITER_TICK_CONNECTIONS });
// vp_state_db_transaction_seconds: the Postgres transaction alone (vp_state_transaction_seconds adds the queue and the publish).
observeStateTransactions((seconds, outcome) => metrics.stateDbTransactionSeconds.observe({ outcome }, seconds));
const topology = createTopology({ namespace: env.BUS_NAMESPACE });
const bus = await connectServiceBus({ service: "state-writer", env, topology, logger });
await ensureTopology(bus, topology, { consumers: [topology.consumers.stateWriter], streams: "expect" });

const pipelineMetadata = createPipelineMetadataLog();
const queue = createBatchingQueue({ db, batchMax: env.STATE_WRITER_BATCH_MAX, pipelineMetadata });
const faultPoint = env.VP_FAULT_POINT ? { point: env.VP_FAULT_POINT, match: env.VP_FAULT_POINT_MATCH } : undefined;
const publishCommitted = createCommittedPublisher({ bus, topology, logger, faultPoint });
const ticks = createTickQueue({
  db: tickDb,
  publishCommitted,
  batchMax: env.STATE_WRITER_BATCH_MAX,
  concurrency: env.STATE_WRITER_BATCH_MAX === 1 ? env.STATE_WRITER_TICK_CONNECTIONS : undefined,
  pipelineMetadata,
});
const applyStateEventUntimed = createApplyStateEvent({ db, publishCommitted, queue, ticks });
const rejectInvalidStateEvent = createRejectInvalidStateEvent({ publishCommitted, queue });
const applyStateEvent: typeof applyStateEventUntimed = (event, ctx) =>
  timed(metrics.stateTransactionSeconds, { kind: event.kind }, () => applyStateEventUntimed(event, ctx));
const transitionUntimed = createTransitionHandler({ publishCommitted, queue });
const transition: typeof transitionUntimed = (req) => timed(metrics.stateTransactionSeconds, { kind: req.kind }, () => transitionUntimed(req));

const rpc = serve(bus, topology.messages.transition, { queue: "state-writer", logger }, transition);
const runRecords = serve(bus, topology.messages.runRecord, { queue: "state-writer", logger }, createRunRecordHandler({ db }));
const app = await createWorker({
  module: StateWriterModule.with({ applyStateEvent }),
  logger,
  strategy: new JetStreamServer({
    bus,
    logger,
    stopTimeoutMs: workGraceMs(env.SHUTDOWN_GRACE_MS),
    bindings: {
      [STATE_PATTERN]: {
        consumer: topology.consumers.stateWriter,
        schema: StateEvent,
        onGiveUp: async (event: StateEvent, info: { reason: string }) => {
          logger.error({ pipelineId: event.pipelineId, nodeId: event.nodeId, jobId: event.jobId, reason: info.reason }, "state event dropped after retries");
        },
        onInvalid: (info: InvalidMessageInfo) => rejectInvalidStateEvent(info, logger),
      },
    },
  }),
});
const eviction = startCacheEviction({
  db,
  logger,
  policy: { idleMs: env.CACHE_IDLE_DAYS * 24 * 3600_000, maxKeptBytes: env.CACHE_MAX_KEPT_BYTES },
  intervalMs: env.CACHE_EVICT_INTERVAL_MS,
});
const health = await startHealthServer(env.HEALTH_PORT, () => !bus.nc.isClosed());
logger.info({ healthPort: health.port }, "state-writer ready");

registerShutdown(
  logger,
  [
    ["stop consuming", () => app.close()],
    ["stop transitions", () => rpc.stop()],
    ["stop run records", () => runRecords.stop()],
    ["drain NATS", () => bus.close()],
    ["stop cache eviction", () => eviction.stop()],
    ["close pool", () => db.end()],
    ["close tick pool", () => tickDb.end()],
    ["stop health", () => health.close()],
    ["flush traces", () => tracing.shutdown()],
  ],
  { graceMs: env.SHUTDOWN_GRACE_MS },
);
