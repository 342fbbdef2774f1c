import "reflect-metadata";
import { createTopology, NODE_TYPES, ExecuteVerdict, HEADERS, type JobMessage } from "@vp/contracts";
import {
  ensureTopology,
  createWorker,
  JetStreamServer,
  startHealthServer,
  broadcast,
  publish,
  publishReply,
  watchStranded,
  request,
  type ConsumeContext,
} from "@vp/bus";
import { createPool } from "@vp/db";
import { connectServiceBus, jobTopologyOptions, registerShutdown, untilStored, workGraceMs } from "@vp/runtime";
import { createLogger, initMetrics, startTracing } from "@vp/telemetry";
import { loadEnv } from "./env";
import { createExecuteHandler } from "./handlers/execute";
import { createReconciler, jobBacklogOf } from "./handlers/reconcile";
import { EVENTS_PATTERN, EXECUTE_PATTERN, SchedulerModule } from "./scheduler.module";
import { CancelVerdict, NodeChanged, RunVerdict, SchedulerCommand } from "@vp/contracts";
import { createRunCoordinator } from "./handlers/run";

const env = loadEnv();
const logger = createLogger({ service: "scheduler", level: env.LOG_LEVEL });
const tracing = startTracing({ serviceName: "scheduler" });
initMetrics("scheduler");
const db = createPool({ url: env.DATABASE_URL, applicationName: "scheduler" });
const topology = createTopology({ namespace: env.BUS_NAMESPACE, streamReplicas: env.STREAM_REPLICAS, ...jobTopologyOptions(env) });
const bus = await connectServiceBus({ service: "scheduler", env, topology, logger });
// The scheduler is the stream manager (@vp/bus STREAM_MANAGER): it creates and updates the streams the others wait for,
// and every job consumer, so a job queued before its executor ever ran waits on its own consumer (KEDA reads its lag).
await ensureTopology(bus, topology, {
  consumers: [topology.consumers.scheduler, topology.consumers.schedulerEvents, ...NODE_TYPES.map(topology.consumers.job)],
});

const reply = (ctx: ConsumeContext, verdict: ExecuteVerdict) => {
  const inbox = ctx.headers?.get(HEADERS.replyTo);
  if (inbox) publishReply(bus, inbox, ExecuteVerdict, verdict);
};
// Ends the dispatch retries below at shutdown, once consuming has stopped.
const stopping = new AbortController();
/**
 * A claimed node's job, published until JetStream stores it: the node is already queued for this job, and a
 * publish lost to a NATS outage would leave it queued with no message (the run has moved on). The job id is the
 * message id, so a retry after a lost ack is dropped as a duplicate.
 */
const dispatchJob = async (job: JobMessage) => {
  await untilStored(
    () => publish(bus, topology.messages.job(job.type), job, { msgId: job.jobId }),
    stopping.signal,
    logger.child({ pipelineId: job.pipelineId, nodeId: job.nodeId, jobId: job.jobId }),
    "job dispatch",
  );
};
const execute = createExecuteHandler({
  db,
  claim: (cmd, cacheKey) =>
    request(
      bus,
      topology.messages.transition,
      { v: 1, kind: "claim-queued", pipelineId: cmd.pipelineId, nodeId: cmd.nodeId, jobId: cmd.jobId, ...(cacheKey ? { cacheKey } : {}) },
      { timeoutMs: 10_000 },
    ),
  dispatch: dispatchJob,
  reply,
});

const runs = createRunCoordinator({
  db,
  recordRun: (req) => request(bus, topology.messages.runRecord, req, { timeoutMs: 10_000 }),
  transition: (req) => request(bus, topology.messages.transition, req, { timeoutMs: 10_000 }),
  dispatch: dispatchJob,
  reply: (ctx, verdict) => {
    const inbox = ctx.headers?.get(HEADERS.replyTo);
    if (inbox) publishReply(bus, inbox, RunVerdict, verdict);
  },
  replyCancel: (ctx, verdict) => {
    const inbox = ctx.headers?.get(HEADERS.replyTo);
    if (inbox) publishReply(bus, inbox, CancelVerdict, verdict);
  },
  interrupt: (msg) => broadcast(bus, topology.messages.interrupt, msg),
  logger,
});
// Before consuming anything: running runs are rebuilt from the database (members in the runs table, statuses in the nodes).
await runs.resume();

const app = await createWorker({
  module: SchedulerModule.with({ execute, run: runs.start, cancel: runs.cancel, event: (event) => runs.onEvent(event) }),
  logger,
  strategy: new JetStreamServer({
    bus,
    logger,
    stopTimeoutMs: workGraceMs(env.SHUTDOWN_GRACE_MS),
    bindings: {
      [EXECUTE_PATTERN]: {
        consumer: topology.consumers.scheduler,
        schema: SchedulerCommand,
        onGiveUp: async (cmd: SchedulerCommand, info: { reason: string; ctx?: ConsumeContext }) => {
          logger.error({ pipelineId: cmd.pipelineId, command: cmd, reason: info.reason }, "command given up");
          if (info.ctx) reply(info.ctx, { ok: false, reason: `Could not schedule the node: ${info.reason}` });
        },
      },
      [EVENTS_PATTERN]: {
        consumer: topology.consumers.schedulerEvents,
        schema: NodeChanged,
        onGiveUp: async (event: NodeChanged, info: { reason: string }) => {
          logger.error(
            { pipelineId: event.pipelineId, nodeId: event.nodeId, eventId: event.eventId, reason: info.reason },
            "committed event dropped by the run coordinator",
          );
        },
      },
    },
  }),
});
const reconcileOnce = createReconciler({
  db,
  publishJob: async (job, msgId) => {
    await publish(bus, topology.messages.job(job.type), job, { msgId });
  },
  publishFailed: async (fact) => {
    await publish(bus, topology.messages.state(fact.pipelineId, fact.nodeId), fact, { msgId: `${fact.jobId}:failed` });
  },
  jobBacklog: jobBacklogOf(bus, topology),
  stalledAfterMs: env.STALLED_AFTER_MS,
  maxAttempts: env.MAX_NODE_ATTEMPTS,
  logger,
});
// Work-queue messages a killed nats-server left where their consumer will never deliver them (packages/bus/src/stranded.ts):
// the consumer is reset. The scheduler creates its command consumer and the job consumers again itself; the
// state-writer creates its own again when its next pull finds it gone.
const stranded = watchStranded(bus, topology, new Set([topology.consumers.scheduler.durable, ...NODE_TYPES.map((t) => topology.consumers.job(t).durable)]));
let reconciling = false;
const reconciler = setInterval(() => {
  if (reconciling) return;
  reconciling = true;
  reconcileOnce()
    .catch((error: unknown) => logger.warn({ err: error }, "reconcile pass failed; will try again"))
    .then(() => stranded.pass())
    .catch((error: unknown) => logger.warn({ err: error }, "checking the work queues for stranded messages failed; will try again"))
    .finally(() => (reconciling = false));
}, env.RECONCILE_INTERVAL_MS);

const health = await startHealthServer(env.HEALTH_PORT, () => !bus.nc.isClosed());
logger.info({ healthPort: health.port }, "scheduler ready");

registerShutdown(
  logger,
  [
    ["stop reconciler", () => clearInterval(reconciler)],
    ["stop consuming", () => app.close()],
    ["stop dispatch retries", () => stopping.abort()],
    ["drain NATS", () => bus.close()],
    ["close pool", () => db.end()],
    ["stop health", () => health.close()],
    ["flush traces", () => tracing.shutdown()],
  ],
  { graceMs: env.SHUTDOWN_GRACE_MS },
);
