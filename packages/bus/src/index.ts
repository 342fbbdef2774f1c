export {
  NonRetryableError,
  RetryAfterError,
  BusUnavailableError,
  BusPermissionError,
  RequestTimeoutError,
  InvalidPayloadError,
  RemoteHandlerError,
} from "./errors";
export { connectBus, type Bus, type ConnectBusOptions } from "./connect";
export {
  BUS_SERVICES,
  STREAM_MANAGER,
  busInboxPrefix,
  busPermissions,
  deployNatsAuthConf,
  deployNatsUsers,
  natsAuthorizationConfig,
  natsPasswordEnv,
  servedTypes,
  type BusPermissions,
  type BusService,
  type NatsUser,
} from "./permissions";
export { ensureTopology, ensureStream, ensureConsumer, streamConfig, consumerConfig, type EnsureTopologyOptions } from "./topology";
export { publish, type PublishOptions } from "./publish";
export {
  consume,
  backoffMs,
  type ConsumeContext,
  type ConsumeOptions,
  type ConsumerHandle,
  type GiveUpInfo,
  type InvalidMessageInfo,
} from "./consume";
export {
  serve,
  request,
  broadcast,
  publishReply,
  waitForReply,
  type Responder,
  type ServeContext,
  type ServeOptions,
  type RequestOptions,
  type InvalidRequestReply,
} from "./rpc";
export { replayEvents, lastSequence, type Replay, type ReplayOptions } from "./replay";
export { startHealthServer, type HealthServer } from "./health";
export { JetStreamServer, BusExceptionFilter, type JetStreamBinding, type JetStreamServerOptions } from "./nest/jetstream-server";
export { createWorker, nestLogger, type CreateWorkerOptions } from "./nest/worker";
export type { MsgHdrs } from "@nats-io/nats-core";
export type { PubAck } from "@nats-io/jetstream";
export { watchStranded, watchStrandedIn, type ConsumerReset, type StrandedWatch } from "./stranded";
