import { z } from "zod";
import { busInboxPrefix, connectBus, type Bus, type BusService } from "@vp/bus";
import type { Topology } from "@vp/contracts";
import type { Logger } from "@vp/telemetry";

const optional = z.preprocess((v) => (typeof v === "string" && v.trim() === "" ? undefined : v), z.string().min(1).optional());

/** Every service's NATS credentials (spread into its env schema); both or neither. */
export const natsCredentialsEnv = {
  /** The service's NATS user (nats-server authorization.users; deploy/k8s: the service's name). Unset: no credentials, with a warning. */
  NATS_USER: optional,
  /** Its password (deploy/k8s: Secret vp-nats-<service>, key password). */
  NATS_PASSWORD: optional,
};

export interface ServiceBusEnv {
  NATS_URL: string;
  NATS_USER?: string;
  NATS_PASSWORD?: string;
}

/**
 * Connects a service as its own NATS user, with its own reply inbox prefix (the one its user may subscribe to).
 * Without credentials it still connects (the machine's local nats-server has no users) but says what that means.
 * A connection that closes for good (the server refused the credentials on reconnect, e.g. after a rotation)
 * ends the process, so the orchestrator restarts it with its current Secret.
 */
export async function connectServiceBus(options: { service: BusService; env: ServiceBusEnv; topology: Topology; logger: Logger }): Promise<Bus> {
  const { service, env, topology, logger } = options;
  if (!env.NATS_USER !== !env.NATS_PASSWORD) throw new Error("NATS_USER and NATS_PASSWORD must be set together");
  const bus = await connectBus({
    servers: env.NATS_URL,
    name: service,
    logger,
    user: env.NATS_USER,
    pass: env.NATS_PASSWORD,
    inboxPrefix: busInboxPrefix(service, topology),
  });
  if (!env.NATS_USER) {
    logger.warn(
      { natsUrl: bus.servers },
      "NATS without credentials: any client on the network may publish commands, read every pipeline's events and call the JetStream API; set NATS_USER and NATS_PASSWORD (deploy/k8s/README.md, NATS users)",
    );
  }
  void bus.nc.closed().then((err) => {
    if (!err) return; // closed by bus.close()
    logger.fatal({ err, natsUser: env.NATS_USER }, "NATS connection lost for good; exiting so the process restarts with its current credentials");
    process.exit(1);
  });
  return bus;
}
