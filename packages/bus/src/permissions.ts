import { createTopology, EXECUTORS, type ExecutorName, NODE_TYPES, nodeTypesOf, type ConsumerSpec, type Topology } from "@vp/contracts";

/**
 * Who may publish and subscribe to what on the bus, per service, derived from the topology (subjects, streams,
 * durable consumers) so the nats-server users (tests and deploy/k8s) and the code can never disagree.
 *
 * - gateway: publishes commands, reads committed events (an ephemeral ordered consumer per SSE stream), publishes and
 *   hears structure changes (core NATS, every replica).
 * - scheduler: consumes commands and committed events, publishes jobs (and the reconciler's failed facts),
 *   asks the state-writer for transitions and run records, interrupts jobs, answers the gateway's verdict
 *   inbox, and is the one service that creates and updates the streams.
 * - state-writer: consumes state facts, answers transition and run-record requests (on the inboxes of the services
 *   that may send them), and is the only publisher of committed events.
 * - executors: consume their own node types' job consumers, claim through the state-writer, publish state facts,
 *   hear interrupts. Never commands, jobs or events.
 * Every service also manages its own durable consumers (create, info, pull, ack) and reads stream info.
 */
export const BUS_SERVICES = ["gateway", "scheduler", "state-writer", "executor-ffmpeg", "executor-ai"] as const;
export type BusService = (typeof BUS_SERVICES)[number];

/** The one service that creates and updates streams; the others wait for them (ensureTopology `streams: "expect"`). */
export const STREAM_MANAGER: BusService = "scheduler";

export interface BusPermissions {
  publish: { allow: string[]; deny: string[] };
  subscribe: { allow: string[] };
}

const JS_API = "$JS.API";

/**
 * The reply inbox prefix of a service's connection: its core NATS replies, JetStream API answers, publish acks
 * and pull deliveries all arrive under it, so no other user can read them (each user may subscribe only to its own).
 */
export function busInboxPrefix(service: BusService, topology: Topology): string {
  return topology.namespace ? `_INBOX.${topology.namespace}.${service}` : `_INBOX.${service}`;
}

/** Node types whose job consumers a service runs. */
export function servedTypes(service: BusService) {
  return (EXECUTORS as readonly string[]).includes(service) ? nodeTypesOf(service as ExecutorName) : [];
}

/** A durable pull consumer of the service's own: (re)create it from its spec, read its info, pull, ack. */
function durable(c: ConsumerSpec): string[] {
  return [
    `${JS_API}.CONSUMER.CREATE.${c.stream}.${c.durable}`,
    `${JS_API}.CONSUMER.CREATE.${c.stream}.${c.durable}.>`,
    `${JS_API}.CONSUMER.INFO.${c.stream}.${c.durable}`,
    `${JS_API}.CONSUMER.MSG.NEXT.${c.stream}.${c.durable}`,
    `$JS.ACK.${c.stream}.${c.durable}.>`,
  ];
}

/** A durable consumer the service creates and reads the info of, but never pulls from or acknowledges on. */
function managed(c: ConsumerSpec): string[] {
  return [
    `${JS_API}.CONSUMER.CREATE.${c.stream}.${c.durable}`,
    `${JS_API}.CONSUMER.CREATE.${c.stream}.${c.durable}.>`,
    `${JS_API}.CONSUMER.INFO.${c.stream}.${c.durable}`,
  ];
}

export function busPermissions(service: BusService, topology: Topology): BusPermissions {
  const { streams, subjects, consumers } = topology;
  const all = topology.allStreams();
  const inbox = (s: BusService) => `${busInboxPrefix(s, topology)}.>`;
  const publish: string[] = [`${JS_API}.INFO`, ...all.map((s) => `${JS_API}.STREAM.INFO.${s.name}`)];
  const deny: string[] = [];
  const subscribe: string[] = [inbox(service)];

  if (service === STREAM_MANAGER) {
    publish.push(...all.flatMap((s) => [`${JS_API}.STREAM.CREATE.${s.name}`, `${JS_API}.STREAM.UPDATE.${s.name}`]));
  }

  switch (service) {
    case "gateway": {
      const events = streams.events.name;
      publish.push(
        ...streams.commands.subjects,
        // SSE: the last event of a pipeline, and ordered consumers (random names; recreated under a new name on a reset).
        `${JS_API}.STREAM.MSG.GET.${events}`,
        `${JS_API}.CONSUMER.CREATE.${events}.*.>`,
        `${JS_API}.CONSUMER.INFO.${events}.*`,
        `${JS_API}.CONSUMER.MSG.NEXT.${events}.*`,
        `${JS_API}.CONSUMER.DELETE.${events}.*`,
      );
      // Structure changes go from the replica that wrote them to every replica's open event streams.
      publish.push(subjects.structure("*"));
      subscribe.push(subjects.structure("*"));
      // ...but never another service's durable consumer on that stream (replace, pull from or delete it).
      for (const c of topology.allConsumers().filter((c) => c.stream === events)) {
        for (const op of ["CREATE", "MSG.NEXT", "DELETE"]) deny.push(`${JS_API}.CONSUMER.${op}.${events}.${c.durable}`);
        deny.push(`${JS_API}.CONSUMER.CREATE.${events}.${c.durable}.>`);
      }
      break;
    }
    case "scheduler":
      publish.push(
        ...streams.jobs.subjects,
        // The reconciler fails nodes whose executor is gone.
        ...streams.state.subjects,
        subjects.transition,
        subjects.runRecord,
        subjects.interrupt,
        // Verdicts on the inbox the gateway named in a command's Vp-Reply-To header.
        inbox("gateway"),
        ...durable(consumers.scheduler),
        ...durable(consumers.schedulerEvents),
        // Every job consumer is created (and kept in step with the settings) by the scheduler; it never pulls from one.
        ...NODE_TYPES.flatMap((t) => managed(consumers.job(t))),
        // Messages a killed nats-server left where their consumer will never deliver them (watchStranded): the
        // state-writer's consumer info, reading single messages of the work-queue streams, and deleting a work-queue
        // consumer to reset it (never a message, never a purge).
        `${JS_API}.CONSUMER.INFO.${consumers.stateWriter.stream}.${consumers.stateWriter.durable}`,
        ...all.filter((s) => s.retention === "workqueue").map((s) => `${JS_API}.STREAM.MSG.GET.${s.name}`),
        ...[consumers.scheduler, consumers.stateWriter, ...NODE_TYPES.map((t) => consumers.job(t))].map(
          (c) => `${JS_API}.CONSUMER.DELETE.${c.stream}.${c.durable}`,
        ),
      );
      break;
    case "state-writer":
      // Answers go to the inboxes of the services that may send requests. Not nats-server's allow_responses: it
      // forgets the requests a connection received when that connection (or the server) restarts, and an answer
      // after a reconnect would be refused.
      publish.push(...streams.events.subjects, ...durable(consumers.stateWriter), ...requesters(topology).map(inbox));
      subscribe.push(subjects.transition, subjects.runRecord);
      break;
    case "executor-ffmpeg":
    case "executor-ai":
      publish.push(...streams.state.subjects, subjects.transition, ...servedTypes(service).flatMap((t) => durable(consumers.job(t))));
      subscribe.push(subjects.interrupt);
      break;
  }
  return { publish: { allow: publish, deny }, subscribe: { allow: subscribe } };
}

/** The services that may send the state-writer's requests (transitions, run records). */
function requesters(topology: Topology): BusService[] {
  const { transition, runRecord } = topology.subjects;
  return BUS_SERVICES.filter((s) => s !== "state-writer" && busPermissions(s, topology).publish.allow.some((p) => p === transition || p === runRecord));
}

export interface NatsUser {
  user: string;
  /** A literal password, or the name of an environment variable of the nats-server process holding it. */
  password: { literal: string } | { env: string };
  /** Omitted: every subject (an administrator, for tests). */
  permissions?: BusPermissions;
}

/**
 * The environment variable the deploy's nats-server reads a service's password from (`$NATS_PASSWORD_GATEWAY`).
 * nats-server parses a referenced variable's value as config text, so it must hold the password in double quotes
 * (a bare hex password such as 3e4a… would parse as a number, or not at all).
 */
export const natsPasswordEnv = (service: BusService) => `NATS_PASSWORD_${service.toUpperCase().replace(/-/g, "_")}`;

/**
 * The `authorization { users = [...] }` block of a nats-server config (2.9 and later). A client without a user
 * is refused: there is no `no_auth_user`.
 */
export function natsAuthorizationConfig(users: NatsUser[]): string {
  const list = (xs: string[]) => `[${xs.map(quote).join(", ")}]`;
  const lines = ["authorization {", "  users = ["];
  for (const u of users) {
    const password = "env" in u.password ? `$${u.password.env}` : quote(u.password.literal);
    lines.push("    {", `      user: ${quote(u.user)}`, `      password: ${password}`);
    if (u.permissions) {
      const p = u.permissions;
      lines.push("      permissions: {");
      lines.push(`        publish: { allow: ${list(p.publish.allow)}${p.publish.deny.length ? `, deny: ${list(p.publish.deny)}` : ""} }`);
      lines.push(`        subscribe: { allow: ${list(p.subscribe.allow)} }`);
      lines.push("      }");
    }
    lines.push("    }");
  }
  lines.push("  ]", "}");
  return `${lines.join("\n")}\n`;
}

/** The deploy's users: one per service, named after it, its password from `natsPasswordEnv(service)`. */
export function deployNatsUsers(topology: Topology): NatsUser[] {
  return BUS_SERVICES.map((service) => ({ user: service, password: { env: natsPasswordEnv(service) }, permissions: busPermissions(service, topology) }));
}

/** The deploy's auth.conf (deploy/k8s/base/platform/nats/auth.conf; `node --import tsx scripts/nats-auth-conf.ts` writes it). */
export function deployNatsAuthConf(): string {
  return (
    "# Generated from packages/bus/src/permissions.ts (busPermissions) by `node --import tsx scripts/nats-auth-conf.ts`; do not edit.\n" +
    "# One user per service, its password from the nats container's environment (the service's Secret vp-nats-<service>).\n" +
    natsAuthorizationConfig(deployNatsUsers(createTopology()))
  );
}

function quote(s: string): string {
  if (/["\\\n]/.test(s)) throw new Error(`not allowed in a nats-server config string: ${JSON.stringify(s)}`);
  return `"${s}"`;
}
