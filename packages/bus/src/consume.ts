import { JetStreamApiCodes, type Consumer, type ConsumerMessages, type JsMsg } from "@nats-io/jetstream";
import type { MsgHdrs } from "@nats-io/nats-core";
import type { ConsumerSpec } from "@vp/contracts";
import {
  activeContext,
  extractTraceContext,
  metrics,
  recordError,
  SpanKind,
  watchConsumer,
  withSpan,
  type Context,
  type Logger,
  type Span,
} from "@vp/telemetry";
import type { z } from "zod";
import type { Bus } from "./connect";
import { errorMessage } from "./connect";
import { NonRetryableError, RetryAfterError } from "./errors";
import { formatIssues } from "./publish";
import { ensureConsumer, isApiError } from "./topology";

/** What a handler knows about the delivery it is working on. */
export interface ConsumeContext {
  /** JetStream delivery count of this message, 1-based (counts every delivery: failures, crashes, retry-afters). */
  attempt: number;
  subject: string;
  /** Stream sequence. */
  seq: number;
  headers?: MsgHdrs;
  /** Child logger with subject, seq, attempt and pipelineId/nodeId/jobId when the payload has them. */
  logger: Logger;
  /**
   * Aborted when a stopping consumer's in-flight work did not finish within stopTimeoutMs (shutdown):
   * the work should give up at once; its message goes back to the stream for another replica.
   */
  signal: AbortSignal;
  /** Context of this message's span (a child of the producer's traceparent). */
  traceContext: Context;
}

export interface GiveUpInfo {
  /** Readable reason for the failed node: the NonRetryableError's or last error's message, or "gave up after N deliveries". */
  reason: string;
  error?: unknown;
  ctx: ConsumeContext;
}

export interface InvalidMessageInfo {
  subject: string;
  raw: string;
  reason: string;
  seq: number;
  headers?: MsgHdrs;
}

export interface ConsumeOptions<S extends z.ZodType> {
  bus: Bus;
  consumer: ConsumerSpec;
  schema: S;
  handler: (payload: z.output<S>, ctx: ConsumeContext) => Promise<void>;
  logger: Logger;
  /** Handlers in flight in this process; default min(consumer.maxAckPending, 16). */
  concurrency?: number;
  /**
   * The message will not be retried any more (NonRetryableError, attempts exhausted, or a delivery that arrives
   * after maxAttempts because the process died on every earlier one). Typically publishes a final failed state.
   * If it throws, the message is nak'ed and onGiveUp runs again on its next delivery; nothing is dropped.
   */
  onGiveUp?: (payload: z.output<S>, info: GiveUpInfo) => Promise<void>;
  /** The payload was not JSON or failed the schema; the message has been terminated. */
  onInvalid?: (info: InvalidMessageInfo) => Promise<void> | void;
  /** RetryAfterError naks allowed per message on top of maxAttempts; default 30. */
  maxRetryAfters?: number;
  /**
   * How long stop() lets in-flight handlers finish before aborting them (ctx.signal) and nak'ing their
   * messages for another replica; default 10 s. Set it a little under the pod's termination grace period.
   */
  stopTimeoutMs?: number;
  /** Expiry of each pull request; default 10 s. */
  pullExpiresMs?: number;
}

export interface ConsumerHandle {
  /** Stops pulling, waits for in-flight handlers (up to stopTimeoutMs), then naks the rest. Idempotent. */
  stop(): Promise<void>;
}

/**
 * THE ack policy of the system. Every JetStream consumer goes through here:
 *
 * | outcome                                         | action                                              |
 * |-------------------------------------------------|-----------------------------------------------------|
 * | payload not JSON / fails schema                 | term, onInvalid (never redelivered)                 |
 * | delivery arrives with its attempts already used | onGiveUp("gave up after N deliveries"), term        |
 * | handler resolves                                | ack (confirmed with ackAck once stopping)           |
 * | NonRetryableError                               | onGiveUp(err.message), term                         |
 * | RetryAfterError                                 | nak(delayMs), within its own budget (see below)     |
 * | any other error                                 | nak(backoff), or onGiveUp + term on the last attempt |
 * | handler still running                           | working() every ackWait/3, so it is not redelivered |
 *
 * Consumers are created with max_deliver -1: exhaustion is decided here so that it always ends in onGiveUp.
 * The functions below each carry out rows of this table: rejectInvalid, processDelivery (attempts used, handler
 * resolves, heartbeats), acknowledge, onFailure (the errors) and giveUp.
 *
 * RetryAfter accounting. JetStream counts every delivery, and a header-free message cannot carry how many of
 * its deliveries were retry-afters. This process remembers, per stream sequence, how many RetryAfterError naks
 * it issued; those deliveries do not count toward maxAttempts, but are capped by maxRetryAfters. If the
 * redelivery lands on another replica (or after a restart) that memory is missing and the retry-afters count as
 * failures: the message may then give up earlier than ideal, but always through onGiveUp, never silently.
 */
export function consume<S extends z.ZodType>(options: ConsumeOptions<S>): ConsumerHandle {
  const c = createConsumerRun(options);
  const loop = pullLoop(c);
  let stopping: Promise<void> | undefined;
  return {
    stop: () => {
      stopping ??= stopConsumer(c, loop);
      return stopping;
    },
  };
}

/** What one consume() call owns: its settings, its controllers and the deliveries in flight. */
interface ConsumerRun<S extends z.ZodType> {
  options: ConsumeOptions<S>;
  bus: Bus;
  spec: ConsumerSpec;
  log: Logger;
  concurrency: number;
  maxRetryAfters: number;
  stopTimeoutMs: number;
  pullExpiresMs: number;
  heartbeatMs: number;
  /** Metric labels: the consumer and its subject filter (never the concrete subject: it names pipelines and nodes). */
  labels: { subject: string; consumer: string };
  unwatch: () => void;
  /** Stop pulling. */
  abort: AbortController;
  /** Separate from `abort`: in-flight work keeps running during the grace period, and is aborted after it. */
  interrupt: AbortController;
  inFlight: Map<Delivery, Promise<void>>;
  /** RetryAfterError naks issued per stream sequence (see the RetryAfter accounting on consume()). */
  retryAfters: Map<number, number>;
  currentPull: ConsumerMessages | undefined;
  /** Wakes the pull loop waiting for a free slot. */
  wake: (() => void) | undefined;
}

function createConsumerRun<S extends z.ZodType>(options: ConsumeOptions<S>): ConsumerRun<S> {
  const { bus, consumer: spec } = options;
  const log = options.logger.child({ consumer: spec.durable, stream: spec.stream });
  const concurrency = Math.max(1, options.concurrency ?? Math.min(spec.maxAckPending, 16));
  const maxRetryAfters = options.maxRetryAfters ?? 30;
  const stopTimeoutMs = options.stopTimeoutMs ?? 10_000;
  const pullExpiresMs = Math.max(1_000, options.pullExpiresMs ?? 10_000);
  const heartbeatMs = Math.max(100, Math.floor(spec.ackWaitMs / 3));
  const labels = { subject: spec.filterSubject, consumer: spec.durable };
  const unwatch = watchConsumer(spec.stream, spec.durable, async () => {
    const info = await bus.jsm.consumers.info(spec.stream, spec.durable);
    return { pending: info.num_pending, ackPending: info.num_ack_pending };
  });
  return {
    options,
    bus,
    spec,
    log,
    concurrency,
    maxRetryAfters,
    stopTimeoutMs,
    pullExpiresMs,
    heartbeatMs,
    labels,
    unwatch,
    abort: new AbortController(),
    interrupt: new AbortController(),
    inFlight: new Map(),
    retryAfters: new Map(),
    currentPull: undefined,
    wake: undefined,
  };
}

function failed<S extends z.ZodType>(c: ConsumerRun<S>, reason: string): void {
  metrics.messagesFailed.inc({ ...c.labels, reason });
}

function notify<S extends z.ZodType>(c: ConsumerRun<S>): void {
  const w = c.wake;
  c.wake = undefined;
  w?.();
}

/** Pulls while there is room for more deliveries, until stopped; a failed pull is retried with backoff. */
async function pullLoop<S extends z.ZodType>(c: ConsumerRun<S>): Promise<void> {
  const { bus, spec, abort, inFlight } = c;
  let jsConsumer: Consumer | undefined;
  let failures = 0;
  while (!abort.signal.aborted) {
    try {
      if (inFlight.size >= c.concurrency) {
        await new Promise<void>((resolve) => (c.wake = resolve));
        continue;
      }
      jsConsumer ??= await bus.js.consumers.get(spec.stream, spec.durable);
      if (abort.signal.aborted) break;
      const pull = await jsConsumer.fetch({ max_messages: c.concurrency - inFlight.size, expires: c.pullExpiresMs });
      c.currentPull = pull;
      for await (const msg of pull) {
        if (abort.signal.aborted) {
          msg.nak();
          continue;
        }
        start(c, msg);
      }
      c.currentPull = undefined;
      if (failures > 0) c.log.info({ failures }, "pulling messages again");
      failures = 0;
    } catch (err) {
      c.currentPull = undefined;
      jsConsumer = undefined;
      if (abort.signal.aborted) break;
      failures++;
      await recoverPull(c, err, failures);
    }
  }
}

/** After a failed pull: recreate the consumer if it is gone, then wait out the backoff. */
async function recoverPull<S extends z.ZodType>(c: ConsumerRun<S>, err: unknown, failures: number): Promise<void> {
  const delayMs = backoffMs(failures);
  c.log.warn({ err: errorMessage(err), failures, delayMs }, "pulling messages failed; retrying");
  if (isApiError(err, JetStreamApiCodes.ConsumerNotFound)) {
    try {
      await ensureConsumer(c.bus, c.spec);
      c.log.warn("consumer was missing; recreated it from its spec");
    } catch (e) {
      c.log.warn({ err: errorMessage(e) }, "could not recreate the consumer");
    }
  }
  await sleep(delayMs, c.abort.signal);
}

function start<S extends z.ZodType>(c: ConsumerRun<S>, msg: JsMsg): void {
  const delivery: Delivery = { msg, settled: false };
  const done = handleDelivery(c, delivery)
    .catch((err) => c.log.error({ err }, "consume helper failed on a message; it will be redelivered"))
    .finally(() => {
      c.inFlight.delete(delivery);
      notify(c);
    });
  c.inFlight.set(delivery, done);
}

async function handleDelivery<S extends z.ZodType>(c: ConsumerRun<S>, delivery: Delivery): Promise<void> {
  const { msg } = delivery;
  const attempt = msg.info.deliveryCount;
  const seq = msg.seq;
  const subject = msg.subject;
  const raw = msg.string();

  const parsed = parsePayload(raw, c.options.schema);
  if (!parsed.ok) return rejectInvalid(c, delivery, raw, parsed.reason);
  const payload = parsed.data;

  await withSpan(
    `process ${c.spec.durable}`,
    {
      parent: extractTraceContext(msg.headers),
      kind: SpanKind.CONSUMER,
      attributes: {
        "messaging.system": "nats",
        "messaging.operation.type": "process",
        "messaging.destination.name": subject,
        "messaging.consumer.group.name": c.spec.durable,
        "messaging.message.id": msg.headers?.get("Nats-Msg-Id") ?? "",
        "vp.delivery.attempt": attempt,
        "vp.stream.seq": seq,
        ...spanIds(payload),
      },
    },
    (span) => processDelivery(c, delivery, payload, span),
  );
}

/** Payload not JSON or failing the schema: term, then onInvalid. */
async function rejectInvalid<S extends z.ZodType>(c: ConsumerRun<S>, delivery: Delivery, raw: string, reason: string): Promise<void> {
  const { msg } = delivery;
  const attempt = msg.info.deliveryCount;
  const seq = msg.seq;
  const subject = msg.subject;
  c.log.error({ subject, seq, attempt, reason }, "invalid message; terminating it");
  failed(c, "invalid");
  settle(delivery, () => msg.term());
  try {
    await c.options.onInvalid?.({ subject, raw, reason, seq, headers: msg.headers });
  } catch (err) {
    c.log.error({ err, subject, seq }, "onInvalid failed");
  }
}

/** The delivery's handler run, heartbeating while it works; its outcome settles the delivery. */
async function processDelivery<S extends z.ZodType>(c: ConsumerRun<S>, delivery: Delivery, payload: z.output<S>, span: Span): Promise<void> {
  const { msg } = delivery;
  const ctx = consumeContext(c, msg, payload);
  const { attempt, seq } = ctx;
  const heartbeat = setInterval(() => {
    if (!delivery.settled) msg.working();
  }, c.heartbeatMs);
  try {
    const delays = c.retryAfters.get(seq) ?? 0;
    const failedBefore = attempt - 1 - delays;
    if (failedBefore >= c.spec.maxAttempts || attempt > c.spec.maxAttempts + c.maxRetryAfters) {
      await giveUp(c, delivery, payload, ctx, `gave up after ${attempt - 1} deliveries`);
      return;
    }
    try {
      await c.options.handler(payload, ctx);
    } catch (err) {
      recordError(span, err);
      await onFailure(c, delivery, payload, ctx, err, delays);
      return;
    }
    await acknowledge(c, delivery, ctx);
  } finally {
    clearInterval(heartbeat);
  }
}

function consumeContext<S extends z.ZodType>(c: ConsumerRun<S>, msg: JsMsg, payload: z.output<S>): ConsumeContext {
  const attempt = msg.info.deliveryCount;
  const seq = msg.seq;
  const subject = msg.subject;
  let logger: Logger | undefined;
  return {
    attempt,
    subject,
    seq,
    headers: msg.headers,
    // Made on first use: most handlers of committed events never log.
    get logger() {
      return (logger ??= c.log.child({ subject, seq, attempt, ...correlationIds(payload) }));
    },
    signal: c.interrupt.signal,
    traceContext: activeContext(),
  };
}

/** The handler resolved: ack (confirmed with ackAck once stopping). */
async function acknowledge<S extends z.ZodType>(c: ConsumerRun<S>, delivery: Delivery, ctx: ConsumeContext): Promise<void> {
  const { msg } = delivery;
  if (!settle(delivery)) return;
  metrics.messagesHandled.inc(c.labels);
  c.retryAfters.delete(ctx.seq);
  if (!c.abort.signal.aborted) {
    // Not ackAck(): waiting for the server's confirmation changed nothing but a log line (a lost ack is a
    // redelivery after ackWait either way, which every handler absorbs), and cost a request per message.
    msg.ack();
    return;
  }
  // Stopping: stop() resolves once the acks of the work it waited for are confirmed.
  try {
    await msg.ackAck();
  } catch (err) {
    ctx.logger.warn({ err: errorMessage(err) }, "ack not confirmed; the message may be redelivered");
  }
}

/** The handler threw: the error rows of the ack policy. */
async function onFailure<S extends z.ZodType>(
  c: ConsumerRun<S>,
  delivery: Delivery,
  payload: z.output<S>,
  ctx: ConsumeContext,
  err: unknown,
  delays: number,
): Promise<void> {
  const { msg } = delivery;
  const { interrupt, spec, maxRetryAfters } = c;
  if (delivery.settled) return;
  failed(
    c,
    interrupt.signal.aborted ? "interrupted" : err instanceof NonRetryableError ? "non_retryable" : err instanceof RetryAfterError ? "retry_after" : "error",
  );
  if (err instanceof NonRetryableError) {
    await giveUp(c, delivery, payload, ctx, err.message, err);
    return;
  }
  if (interrupt.signal.aborted) {
    ctx.logger.info({ err: errorMessage(err) }, "handler interrupted by shutdown; message goes back to the stream");
    settle(delivery, () => msg.nak());
    return;
  }
  if (err instanceof RetryAfterError) {
    if (delays >= maxRetryAfters) {
      await giveUp(c, delivery, payload, ctx, `still asked to retry later after ${delays} delays: ${err.message}`, err);
      return;
    }
    rememberRetryAfter(c, ctx.seq, delays + 1);
    ctx.logger.info({ delayMs: err.delayMs, reason: err.message }, "retrying after the requested delay");
    settle(delivery, () => msg.nak(err.delayMs));
    return;
  }
  const failures = ctx.attempt - delays;
  if (failures >= spec.maxAttempts) {
    await giveUp(c, delivery, payload, ctx, errorMessage(err), err);
    return;
  }
  const delayMs = backoffMs(failures);
  ctx.logger.warn({ err, delayMs, maxAttempts: spec.maxAttempts }, "handler failed; will retry");
  settle(delivery, () => msg.nak(delayMs));
}

/** onGiveUp, then term; if onGiveUp throws, nak so that it runs again on the next delivery. */
async function giveUp<S extends z.ZodType>(
  c: ConsumerRun<S>,
  delivery: Delivery,
  payload: z.output<S>,
  ctx: ConsumeContext,
  reason: string,
  error?: unknown,
): Promise<void> {
  const { msg } = delivery;
  ctx.logger.error({ reason, err: error }, "giving up on message");
  if (c.options.onGiveUp) {
    try {
      await c.options.onGiveUp(payload, { reason, error, ctx });
    } catch (err) {
      const delayMs = backoffMs(ctx.attempt);
      ctx.logger.error({ err, delayMs }, "onGiveUp failed; the message will be redelivered and given up again");
      settle(delivery, () => msg.nak(delayMs));
      return;
    }
  }
  c.retryAfters.delete(ctx.seq);
  settle(delivery, () => msg.term());
}

function rememberRetryAfter<S extends z.ZodType>(c: ConsumerRun<S>, seq: number, count: number): void {
  const { retryAfters } = c;
  retryAfters.delete(seq);
  retryAfters.set(seq, count);
  if (retryAfters.size > 10_000) {
    const oldest = retryAfters.keys().next().value;
    if (oldest !== undefined) retryAfters.delete(oldest);
  }
}

/** Stops pulling, waits for in-flight handlers up to stopTimeoutMs, then interrupts them and naks their messages. */
async function stopConsumer<S extends z.ZodType>(c: ConsumerRun<S>, loop: Promise<void>): Promise<void> {
  const { inFlight } = c;
  c.unwatch();
  c.abort.abort();
  notify(c);
  await c.currentPull?.close().catch(() => {});
  await loop;
  if (inFlight.size > 0) {
    const drained = Promise.allSettled([...inFlight.values()]).then(() => true);
    const inTime = await Promise.race([drained, sleep(c.stopTimeoutMs).then(() => false)]);
    if (!inTime) {
      c.log.warn({ inFlight: inFlight.size }, "handlers still running at stop; interrupting them and handing their messages back");
      c.interrupt.abort();
      for (const d of inFlight.keys()) settle(d, () => d.msg.nak());
    }
  }
}

interface Delivery {
  msg: JsMsg;
  /** An outcome (ack/nak/term) was sent; later outcomes for this delivery are dropped. */
  settled: boolean;
}

/** Marks the delivery settled and runs `send` unless an outcome was already sent. */
function settle(delivery: Delivery, send?: () => void): boolean {
  if (delivery.settled) return false;
  delivery.settled = true;
  send?.();
  return true;
}

function parsePayload<S extends z.ZodType>(raw: string, schema: S): { ok: true; data: z.output<S> } | { ok: false; reason: string } {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (err) {
    return { ok: false, reason: `not JSON: ${errorMessage(err)}` };
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) return { ok: false, reason: formatIssues(parsed.error) };
  return { ok: true, data: parsed.data };
}

function correlationIds(payload: unknown): Record<string, string> {
  const ids: Record<string, string> = {};
  if (payload && typeof payload === "object") {
    for (const key of ["pipelineId", "nodeId", "jobId"] as const) {
      const v = (payload as Record<string, unknown>)[key];
      if (typeof v === "string") ids[key] = v;
    }
  }
  return ids;
}

/** Span attributes naming the pipeline, node, job and node type a message is about (when its payload has them). */
function spanIds(payload: unknown): Record<string, string> {
  const ids = correlationIds(payload);
  const attrs: Record<string, string> = {};
  if (ids.pipelineId) attrs["vp.pipeline.id"] = ids.pipelineId;
  if (ids.nodeId) attrs["vp.node.id"] = ids.nodeId;
  if (ids.jobId) attrs["vp.job.id"] = ids.jobId;
  const type = payload && typeof payload === "object" ? (payload as Record<string, unknown>).type : undefined;
  if (typeof type === "string") attrs["vp.node.type"] = type;
  return attrs;
}

/** Exponential backoff 500 ms .. 30 s with jitter (between half and all of the step). */
export function backoffMs(failures: number): number {
  const step = Math.min(30_000, 500 * 2 ** Math.max(0, failures - 1));
  return Math.round(step / 2 + Math.random() * (step / 2));
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
