import "reflect-metadata";
import { NestFactory } from "@nestjs/core";
import { createTopology, StateEvent, TransitionRequest } from "@vp/contracts";
import { connectBus, ensureTopology, JetStreamServer, serve } from "@vp/bus";
import { createPool } from "@vp/db";
import { registerShutdown, startHealthServer } from "@vp/runtime";
import { createLogger, startTracing } from "@vp/telemetry";
import { loadEnv } from "./env";
import { createApplyStateEvent } from "./handlers/apply-state-event";
import { createCommittedPublisher, createKeyedQueue } from "./handlers/committed";
import { createTransitionHandler } from "./handlers/transition";
import { STATE_PATTERN, StateWriterModule } from "./state-writer.module";

const env = loadEnv();
const logger = createLogger({ service: "state-writer", level: env.LOG_LEVEL });
const tracing = startTracing({ serviceName: "state-writer" });
const db = createPool({ url: env.DATABASE_URL, applicationName: "state-writer" });
const bus = await connectBus({ servers: env.NATS_URL, name: "state-writer", logger });
const topology = createTopology({ namespace: env.BUS_NAMESPACE });
await ensureTopology(bus, topology);

const queue = createKeyedQueue();
const publishCommitted = createCommittedPublisher({ bus, topology, logger });
const applyStateEvent = createApplyStateEvent({ db, publishCommitted, queue });
const transition = createTransitionHandler({ db, publishCommitted, queue });

const rpc = serve(bus, topology.subjects.transition, { queue: "state-writer", requestSchema: TransitionRequest, logger }, transition);
const app = await NestFactory.createMicroservice(StateWriterModule.with({ applyStateEvent }), {
  strategy: new JetStreamServer({
    bus,
    logger,
    bindings: {
      [STATE_PATTERN]: {
        consumer: topology.consumers.stateWriter,
        schema: StateEvent,
        onGiveUp: async (event: StateEvent, info: { reason: string }) => {
          logger.error({ pipelineId: event.pipelineId, nodeId: event.nodeId, jobId: event.jobId, reason: info.reason }, "state event dropped after retries");
        },
      },
    },
  }),
  logger: false,
});
await app.listen();
const health = await startHealthServer(env.HEALTH_PORT, () => !bus.nc.isClosed());
logger.info({ healthPort: env.HEALTH_PORT }, "state-writer ready");

registerShutdown(logger, [
  ["stop consuming", () => app.close()],
  ["stop transitions", () => rpc.stop()],
  ["drain NATS", () => bus.close()],
  ["close pool", () => db.end()],
  ["stop health", () => new Promise((resolve) => health.close(resolve))],
  ["flush traces", () => tracing.shutdown()],
]);
