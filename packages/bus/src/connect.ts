import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { errors as natsErrors, type NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import type { Logger } from "@vp/telemetry";
import { BusUnavailableError } from "./errors";

export interface Bus {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  /** The servers this bus was asked to connect to (for messages). */
  servers: string;
  /** The NATS user this connection authenticated as; undefined when the server took it without credentials. */
  user: string | undefined;
  /** Prefix of every reply inbox of this connection (its user may subscribe only under it). */
  inboxPrefix: string;
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
  /** NATS user and password (nats-server `authorization.users`); both or neither. */
  user?: string;
  pass?: string;
  /** Reply inbox prefix (default `_INBOX`); a service's user may subscribe only under its own (permissions.ts). */
  inboxPrefix?: string;
}

/**
 * Connects to NATS and JetStream. Fails fast with a clear message when the server is unreachable at start;
 * once connected, reconnects forever (a NATS restart must not kill a worker) and logs every status change.
 */
export async function connectBus(options: ConnectBusOptions): Promise<Bus> {
  const servers = Array.isArray(options.servers) ? options.servers : options.servers.split(",").map((s) => s.trim());
  const shown = servers.join(",");
  const logger = options.logger.child({ component: "bus" });
  if (!options.user !== !options.pass) throw new BusUnavailableError("NATS credentials need both a user and a password (NATS_USER and NATS_PASSWORD)");
  const inboxPrefix = options.inboxPrefix ?? "_INBOX";
  const nc = await openConnection(options, servers, shown, inboxPrefix);
  const jsm = await openJetStreamManager(nc, shown);
  const js = jetstream(nc);
  void logStatusChanges(nc, logger, options.user);
  return {
    nc,
    js,
    jsm,
    servers: shown,
    user: options.user,
    inboxPrefix,
    logger: options.logger,
    close: drainOnce(nc),
  };
}

/** The NATS connection, or a BusUnavailableError saying whether the server is unreachable or refused the credentials. */
async function openConnection(options: ConnectBusOptions, servers: string[], shown: string, inboxPrefix: string): Promise<NatsConnection> {
  try {
    return await connect({
      servers,
      name: options.name,
      ...(options.user ? { user: options.user, pass: options.pass } : {}),
      inboxPrefix,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 1_000,
      waitOnFirstConnect: false,
      // Otherwise every request (RPC, JetStream publish, API call) captures two stack traces up front in case it
      // fails; errors still carry their message and cause, and callers map them (rpc.ts, publish.ts).
      noAsyncTraces: true,
    });
  } catch (err) {
    if (err instanceof natsErrors.AuthorizationError) {
      const who = options.user ? `the credentials of user ${options.user}` : "a connection without credentials (set NATS_USER and NATS_PASSWORD)";
      throw new BusUnavailableError(`NATS at ${shown} refused ${who}: ${errorMessage(err)}`, { cause: err });
    }
    throw new BusUnavailableError(`NATS is not reachable at ${shown}: ${errorMessage(err)}`, { cause: err });
  }
}

/** The JetStream manager; without JetStream the connection is closed and the error says how to start the server. */
async function openJetStreamManager(nc: NatsConnection, shown: string): Promise<JetStreamManager> {
  try {
    return await jetstreamManager(nc);
  } catch (err) {
    await nc.close().catch(() => {});
    throw new BusUnavailableError(`JetStream is not available at ${shown}: ${errorMessage(err)} (start nats-server with -js)`, { cause: err });
  }
}

/** Logs every status change of the connection for as long as it lives. */
async function logStatusChanges(nc: NatsConnection, logger: Logger, user: string | undefined): Promise<void> {
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
        if (s.error instanceof natsErrors.PermissionViolationError) {
          // The server and the code disagree on what this user may do (permissions.ts): loud, with the subject.
          logger.error({ user, operation: s.error.operation, subject: s.error.subject }, "NATS permission denied");
        } else logger.warn({ err: s.error }, "NATS error");
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
}

/** Bus#close: drains the connection once (closing it if the drain fails); later calls return the same promise. */
function drainOnce(nc: NatsConnection): () => Promise<void> {
  let closing: Promise<void> | undefined;
  return () => {
    closing ??= (async () => {
      if (nc.isClosed()) return;
      try {
        await nc.drain();
      } catch {
        await nc.close().catch(() => {});
      }
    })();
    return closing;
  };
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
