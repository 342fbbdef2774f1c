import { JetStreamApiError, type PubAck } from "@nats-io/jetstream";
import { errors as natsErrors, headers as createHeaders, type Msg, type MsgHdrs } from "@nats-io/nats-core";
import type { MessageSubject } from "@vp/contracts";
import { injectTraceHeaders, SpanKind, withSpan } from "@vp/telemetry";
import type { z } from "zod";
import type { Bus } from "./connect";
import { BusPermissionError, BusUnavailableError, InvalidPayloadError } from "./errors";
import { repliesOf, ReplyError } from "./replies";

export interface PublishOptions {
  /** Stable id of the fact/command; JetStream drops a second message with the same id inside the stream's duplicate window. */
  msgId: string;
  /** Extra headers (traceparent is added from the active context). */
  headers?: MsgHdrs | Record<string, string>;
  /** Wait for the stream's ack at most this long; default 5 s. */
  timeoutMs?: number;
}

/**
 * Validates, encodes and publishes one message to JetStream and waits for the stream's ack.
 * `message` is an entry of the topology's catalog (`topology.messages.execute`, `topology.messages.job(type)`):
 * the payload is typed and validated by the schema its subject carries.
 * A payload that fails its schema is a producer bug and throws InvalidPayloadError before anything is sent.
 * `PubAck.duplicate` is true when the msgId was already stored.
 * The ack comes back on the connection's shared reply inbox (replies.ts), which is what nats.js's `js.publish`
 * does too, with less work per message; a stream's error answer throws its JetStreamApiError.
 */
export async function publish<S extends z.ZodType>(bus: Bus, message: MessageSubject<S>, payload: z.input<S>, options: PublishOptions): Promise<PubAck> {
  const { subject } = message;
  const data = encode(subject, message.schema, payload);
  // A producer span (the consumer's span is its child): in a trace, the time between the two is the bus's.
  return withSpan(
    `publish ${subject}`,
    { kind: SpanKind.PRODUCER, attributes: { "messaging.system": "nats", "messaging.destination.name": subject, "messaging.message.id": options.msgId } },
    async () => {
      const hdrs = toHeaders(options.headers);
      hdrs.set(MSG_ID_HEADER, options.msgId);
      injectTraceHeaders(hdrs);
      let ack: Msg;
      try {
        ack = await repliesOf(bus.nc).request(subject, data, { headers: hdrs, timeoutMs: options.timeoutMs ?? 5_000 });
      } catch (err) {
        throw mapNatsError(err, `publish to ${subject}`, bus);
      }
      return parsePubAck(ack, subject);
    },
  );
}

const MSG_ID_HEADER = "Nats-Msg-Id";

/** The stream's answer to a publish: `{ stream, seq, duplicate? }`, or `{ error: { code, err_code, description } }`. */
function parsePubAck(msg: Msg, subject: string): PubAck {
  let body: Partial<PubAck> & { error?: { code: number; err_code?: number; description: string } };
  try {
    body = JSON.parse(new TextDecoder().decode(msg.data));
  } catch (err) {
    throw new BusUnavailableError(`publish to ${subject}: the server's ack is not JSON`, { cause: err });
  }
  if (body.error) throw new JetStreamApiError({ code: body.error.code, err_code: body.error.err_code ?? 0, description: body.error.description });
  if (typeof body.stream !== "string" || body.stream === "" || typeof body.seq !== "number") {
    throw new BusUnavailableError(`publish to ${subject}: invalid ack from the server`);
  }
  return { stream: body.stream, seq: body.seq, duplicate: body.duplicate === true, domain: body.domain ?? "" } as PubAck;
}

export function encode<S extends z.ZodType>(subject: string, schema: S, payload: unknown): Uint8Array {
  const parsed = schema.safeParse(payload);
  if (!parsed.success) {
    throw new InvalidPayloadError(`invalid payload for ${subject}: ${formatIssues(parsed.error)}`, { cause: parsed.error });
  }
  return new TextEncoder().encode(JSON.stringify(parsed.data));
}

export function toHeaders(input?: MsgHdrs | Record<string, string>): MsgHdrs {
  if (input && typeof (input as MsgHdrs).set === "function" && typeof (input as MsgHdrs).keys === "function") {
    const copy = createHeaders();
    for (const k of (input as MsgHdrs).keys()) for (const v of (input as MsgHdrs).values(k)) copy.append(k, v);
    return copy;
  }
  const h = createHeaders();
  for (const [k, v] of Object.entries((input as Record<string, string> | undefined) ?? {})) h.set(k, v);
  return h;
}

export function formatIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.length ? i.path.join(".") : "(root)"}: ${i.message}`).join("; ");
}

export function deniedError(what: string, bus: Bus, cause: unknown): BusPermissionError {
  return new BusPermissionError(`${what}: denied by NATS, outside the permissions of user ${bus.user ?? "(none)"} (packages/bus/src/permissions.ts)`, {
    cause,
  });
}

/** Connection-level failures become BusUnavailableError / RequestTimeoutError; API errors pass through. */
export function mapNatsError(err: unknown, what: string, bus: Bus): unknown {
  if (err instanceof ReplyError) {
    if (err.kind === "timeout") return new BusUnavailableError(`${what} timed out (NATS at ${bus.servers})`, { cause: err });
    if (err.kind === "denied") return deniedError(what, bus, err);
    if (err.kind === "no_responders") {
      return new BusUnavailableError(`${what}: no stream captures this subject, or JetStream is off (NATS at ${bus.servers})`, { cause: err });
    }
    return new BusUnavailableError(`${what}: NATS connection unavailable (${err.message})`, { cause: err });
  }
  // The JetStream client reports "no responders" on publish as JetStreamNotEnabled; the usual cause is that no
  // stream captures the subject (or JetStream is off), which callers can only wait out or fix in config.
  const cause = err instanceof Error ? err.cause : undefined;
  if (cause instanceof natsErrors.RequestError && cause.isNoResponders()) {
    return new BusUnavailableError(`${what}: no stream captures this subject, or JetStream is off (NATS at ${bus.servers})`, { cause: err });
  }
  if (err instanceof natsErrors.TimeoutError) {
    return new BusUnavailableError(`${what} timed out (NATS at ${bus.servers})`, { cause: err });
  }
  if (err instanceof natsErrors.RequestError) {
    if (err.isNoResponders()) {
      return new BusUnavailableError(`${what}: no stream or responder listens on this subject (NATS at ${bus.servers})`, { cause: err });
    }
    if (err.cause instanceof natsErrors.TimeoutError) {
      return new BusUnavailableError(`${what} timed out (NATS at ${bus.servers})`, { cause: err });
    }
    return new BusUnavailableError(`${what} failed: ${err.message}`, { cause: err });
  }
  if (err instanceof natsErrors.ClosedConnectionError || err instanceof natsErrors.DrainingConnectionError || err instanceof natsErrors.ConnectionError) {
    return new BusUnavailableError(`${what}: NATS connection unavailable (${err.message})`, { cause: err });
  }
  return err;
}
