import { createInbox, headers as createHeaders, type Msg, type MsgHdrs, type Subscription } from "@nats-io/nats-core";
import type { MessageSubject, RequestSubject } from "@vp/contracts";
import { extractTraceContext, injectTraceHeaders, SpanKind, withSpan, type Logger } from "@vp/telemetry";
import type { z } from "zod";
import type { Bus } from "./connect";
import { errorMessage } from "./connect";
import { BusUnavailableError, InvalidPayloadError, RemoteHandlerError, RequestTimeoutError } from "./errors";
import { deniedError, encode, formatIssues } from "./publish";
import { errors as natsErrors } from "@nats-io/nats-core";
import { repliesOf, ReplyError } from "./replies";

/** Header a responder sets when its handler threw; request() turns it into RemoteHandlerError. */
const ERROR_HEADER = "Vp-Error";

/** Reply of serve() to a request that fails its request schema (a requester/responder version skew). */
export interface InvalidRequestReply {
  ok: false;
  code: "invalid";
  reason: string;
}

export interface ServeContext {
  subject: string;
  headers?: MsgHdrs;
  logger: Logger;
}

export interface ServeOptions {
  /** Queue group: each request goes to one replica. */
  queue: string;
  logger: Logger;
}

export interface Responder {
  /** Stops taking requests and waits for the ones being handled. */
  stop(): Promise<void>;
}

/**
 * Answers core NATS requests on a catalog entry's subject (`topology.messages.transition`) in a queue group
 * (guarded transitions that need an answer). The handler's return value is JSON-encoded as the reply. A request
 * that fails the entry's request schema gets `{ ok: false, code: "invalid", reason }`; a handler that throws gets
 * an empty reply with a Vp-Error header.
 */
export function serve<Req extends z.ZodType, Rep extends z.ZodType>(
  bus: Bus,
  route: RequestSubject<Req, Rep>,
  options: ServeOptions,
  handler: (req: z.output<Req>, ctx: ServeContext) => Promise<z.input<Rep>>,
): Responder {
  const { subject } = route;
  const log = options.logger.child({ responder: subject });
  const sub: Subscription = bus.nc.subscribe(subject, { queue: options.queue });
  const done = (async () => {
    for await (const msg of sub) void answer(msg);
  })();
  const pending = new Set<Promise<void>>();

  function answer(msg: Msg): Promise<void> {
    const p = withSpan(
      `serve ${subject}`,
      { parent: extractTraceContext(msg.headers), kind: SpanKind.SERVER, attributes: { "messaging.system": "nats", "messaging.destination.name": subject } },
      async () => {
        let json: unknown;
        try {
          json = msg.json();
        } catch (err) {
          return reply(msg, { ok: false, code: "invalid", reason: `not JSON: ${errorMessage(err)}` } satisfies InvalidRequestReply);
        }
        const parsed = route.request.safeParse(json);
        if (!parsed.success) {
          const reason = formatIssues(parsed.error);
          log.warn({ reason }, "invalid request");
          return reply(msg, { ok: false, code: "invalid", reason } satisfies InvalidRequestReply);
        }
        try {
          const result = await handler(parsed.data, { subject: msg.subject, headers: msg.headers, logger: log });
          reply(msg, result);
        } catch (err) {
          log.error({ err }, "request handler failed");
          const h = createHeaders();
          h.set(
            ERROR_HEADER,
            errorMessage(err)
              .replace(/[\r\n]+/g, " ")
              .slice(0, 1000),
          );
          msg.respond(new Uint8Array(), { headers: h });
        }
      },
    )
      .catch((err) => log.error({ err }, "could not answer request"))
      .finally(() => pending.delete(p));
    pending.add(p);
    return p;
  }

  function reply(msg: Msg, value: unknown) {
    msg.respond(new TextEncoder().encode(JSON.stringify(value ?? null)));
  }

  return {
    stop: async () => {
      if (!sub.isClosed()) await sub.drain().catch(() => {});
      await done;
      await Promise.allSettled([...pending]);
    },
  };
}

export interface RequestOptions {
  timeoutMs: number;
}

/**
 * Sends a request validated by the catalog entry's request schema and validates the reply by its reply schema.
 * No responder -> BusUnavailableError; no reply in time -> RequestTimeoutError; responder's handler threw ->
 * RemoteHandlerError; reply fails the reply schema (or the responder rejected the request as invalid) ->
 * InvalidPayloadError.
 */
export async function request<Req extends z.ZodType, Rep extends z.ZodType>(
  bus: Bus,
  route: RequestSubject<Req, Rep>,
  payload: z.input<Req>,
  options: RequestOptions,
): Promise<z.output<Rep>> {
  const { subject } = route;
  return withSpan(
    `request ${subject}`,
    { kind: SpanKind.CLIENT, attributes: { "messaging.system": "nats", "messaging.destination.name": subject } },
    async () => {
      const data = encode(subject, route.request, payload);
      const h = createHeaders();
      injectTraceHeaders(h);
      let msg: Msg;
      try {
        msg = await repliesOf(bus.nc).request(subject, data, { timeoutMs: options.timeoutMs, headers: h });
      } catch (err) {
        throw mapRequestError(err, subject, options.timeoutMs, bus);
      }
      const remoteError = msg.headers?.get(ERROR_HEADER);
      if (remoteError) throw new RemoteHandlerError(`${subject}: ${remoteError}`);
      let json: unknown;
      try {
        json = msg.json();
      } catch (err) {
        throw new InvalidPayloadError(`reply on ${subject} is not JSON: ${errorMessage(err)}`, { cause: err });
      }
      const parsed = route.reply.safeParse(json);
      if (parsed.success) return parsed.data;
      if (isInvalidRequestReply(json)) {
        throw new InvalidPayloadError(`request rejected as invalid by ${subject}: ${json.reason}`);
      }
      throw new InvalidPayloadError(`invalid reply on ${subject}: ${formatIssues(parsed.error)}`, { cause: parsed.error });
    },
  );
}

function isInvalidRequestReply(v: unknown): v is InvalidRequestReply {
  return !!v && typeof v === "object" && (v as InvalidRequestReply).ok === false && (v as InvalidRequestReply).code === "invalid";
}

function mapRequestError(err: unknown, subject: string, timeoutMs: number, bus: Bus): unknown {
  if (err instanceof ReplyError) {
    if (err.kind === "timeout") return new RequestTimeoutError(`no reply on ${subject} within ${timeoutMs} ms`, { cause: err });
    if (err.kind === "no_responders") return new BusUnavailableError(`no responders on ${subject} (NATS at ${bus.servers})`, { cause: err });
    if (err.kind === "denied") return deniedError(`request on ${subject}`, bus, err);
    return new BusUnavailableError(`request on ${subject} failed: ${err.message}`, { cause: err });
  }
  const timedOut = err instanceof natsErrors.TimeoutError || (err instanceof natsErrors.RequestError && err.cause instanceof natsErrors.TimeoutError);
  if (timedOut) return new RequestTimeoutError(`no reply on ${subject} within ${timeoutMs} ms`, { cause: err });
  if (err instanceof natsErrors.RequestError && err.isNoResponders()) {
    return new BusUnavailableError(`no responders on ${subject} (NATS at ${bus.servers})`, { cause: err });
  }
  if (err instanceof Error) return new BusUnavailableError(`request on ${subject} failed: ${err.message}`, { cause: err });
  return err;
}

/**
 * Publishes a validated reply on a core NATS inbox named by a JetStream message (e.g. the scheduler's verdict
 * on the gateway's Vp-Reply-To inbox). Fire-and-forget: nobody may be listening any more, which is fine.
 */
export function publishReply<S extends z.ZodType>(bus: Bus, inbox: string, schema: S, payload: z.input<S>): void {
  const data = encode(inbox, schema, payload);
  const h = createHeaders();
  injectTraceHeaders(h);
  try {
    bus.nc.publish(inbox, data, { headers: h });
  } catch (err) {
    bus.logger.warn({ err: errorMessage(err), inbox }, "could not publish reply");
  }
}

/** Publishes a catalog entry's message on core NATS to every subscriber (e.g. JobInterrupt); fire-and-forget like publishReply. */
export function broadcast<S extends z.ZodType>(bus: Bus, message: MessageSubject<S>, payload: z.input<S>): void {
  publishReply(bus, message.subject, message.schema, payload);
}

/**
 * Subscribes a fresh inbox, calls `send(inbox)` (e.g. publish a command carrying the inbox in a header), then
 * waits up to `timeoutMs` after send resolved for one reply. Resolves the validated reply, or null when none
 * came in time (the command is still stored and will run). Errors of `send` propagate; an invalid reply
 * throws InvalidPayloadError.
 */
export async function waitForReply<S extends z.ZodType>(
  bus: Bus,
  schema: S,
  timeoutMs: number,
  send: (inbox: string) => Promise<unknown>,
): Promise<z.output<S> | null> {
  const inbox = createInbox(bus.inboxPrefix);
  const sub = bus.nc.subscribe(inbox, { max: 1 });
  const first = (async () => {
    for await (const msg of sub) return msg;
    return null;
  })();
  let timer: NodeJS.Timeout | undefined;
  try {
    await send(inbox);
    const msg = await Promise.race([first, new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), timeoutMs)))]);
    if (!msg) return null;
    let json: unknown;
    try {
      json = msg.json();
    } catch (err) {
      throw new InvalidPayloadError(`reply on ${inbox} is not JSON: ${errorMessage(err)}`, { cause: err });
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) throw new InvalidPayloadError(`invalid reply: ${formatIssues(parsed.error)}`, { cause: parsed.error });
    return parsed.data;
  } finally {
    clearTimeout(timer);
    sub.unsubscribe();
  }
}
