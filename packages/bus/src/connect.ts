import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import type { Logger } from "@vp/telemetry";
import { BusUnavailableError } from "./errors";

export interface Bus {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  /** The servers this bus was asked to connect to (for messages). */
  servers: string;
  logger: Logger;
  /** Drains subscriptions and pending publishes, then closes the connection. Idempotent. */
  close(): Promise<void>;
}

export interface ConnectBusOptions {
  /** e.g. "nats://127.0.0.1:4222"; comma-separated or an array for a cluster. */
  servers: string | string[];
  /** Connection name shown by the server (`nats server report connections`). */
  name: string;
  logger: Logger;
}

/**
 * Connects to NATS and JetStream. Fails fast with a clear message when the server is unreachable at start;
 * once connected, reconnects forever (a NATS restart must not kill a worker) and logs every status change.
 */
export async function connectBus(options: ConnectBusOptions): Promise<Bus> {
  const servers = Array.isArray(options.servers) ? options.servers : options.servers.split(",").map((s) => s.trim());
  const shown = servers.join(",");
  const logger = options.logger.child({ component: "bus" });
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers,
      name: options.name,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 1_000,
      waitOnFirstConnect: false,
      // Otherwise every request (RPC, JetStream publish, API call) captures two stack traces up front in case it
      // fails; errors still carry their message and cause, and callers map them (rpc.ts, publish.ts).
      noAsyncTraces: true,
    });
  } catch (err) {
    throw new BusUnavailableError(`NATS is not reachable at ${shown}: ${errorMessage(err)}`, { cause: err });
  }
  let jsm: JetStreamManager;
  try {
    jsm = await jetstreamManager(nc);
  } catch (err) {
    await nc.close().catch(() => {});
    throw new BusUnavailableError(`JetStream is not available at ${shown}: ${errorMessage(err)} (start nats-server with -js)`, { cause: err });
  }
  const js = jetstream(nc);

  void (async () => {
    for await (const s of nc.status()) {
      switch (s.type) {
        case "disconnect":
          logger.warn({ server: s.server }, "NATS disconnected");
          break;
        case "reconnecting":
          logger.debug("NATS reconnecting");
          break;
        case "reconnect":
          logger.info({ server: s.server }, "NATS reconnected");
          break;
        case "error":
          logger.warn({ err: s.error }, "NATS error");
          break;
        case "ldm":
          logger.warn({ server: s.server }, "NATS server entering lame duck mode");
          break;
        case "staleConnection":
          logger.warn("NATS connection stale");
          break;
        case "slowConsumer":
          logger.warn({ subject: s.sub.getSubject(), pending: s.pending }, "NATS slow consumer");
          break;
        default:
          break;
      }
    }
  })();

  let closing: Promise<void> | undefined;
  return {
    nc,
    js,
    jsm,
    servers: shown,
    logger: options.logger,
    close: () => {
      closing ??= (async () => {
        if (nc.isClosed()) return;
        try {
          await nc.drain();
        } catch {
          await nc.close().catch(() => {});
        }
      })();
      return closing;
    },
  };
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
