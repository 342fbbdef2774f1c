import { AsyncLocalStorage } from "node:async_hooks";

/**
 * Errors that steer the bus. Handlers throw them; the consume helper (consume.ts) maps them to acks.
 */

/** The work can never succeed (bad input, a provider's 4xx): term the message, fail the node with this message. */
export class NonRetryableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "NonRetryableError";
    recordSteeringError(this);
  }
}

/**
 * Try again no sooner than `delayMs` (a provider's 429 + Retry-After): nak with that delay. JetStream counts
 * the redelivery like any other; the consume helper gives these their own budget (see consume.ts).
 */
export class RetryAfterError extends Error {
  readonly delayMs: number;
  constructor(delayMs: number, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "RetryAfterError";
    this.delayMs = Math.max(0, Math.round(delayMs));
    recordSteeringError(this);
  }
}

/** NATS is unreachable, the connection is closed/draining, or a publish timed out. Retryable. */
export class BusUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "BusUnavailableError";
  }
}

/**
 * nats-server refused a publish or subscribe outside this connection's user's permissions (permissions.ts): a
 * deploy whose server config and code disagree. Retryable (a config reload can fix it without a restart).
 */
export class BusPermissionError extends BusUnavailableError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "BusPermissionError";
  }
}

/** A core NATS request got no reply in time. Retryable. */
export class RequestTimeoutError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "RequestTimeoutError";
  }
}

/** A payload failed its zod schema on the sending side (a producer bug) or a reply failed its schema. */
export class InvalidPayloadError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "InvalidPayloadError";
  }
}

/** The responder of a request threw; carries its message. Retryable. */
export class RemoteHandlerError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "RemoteHandlerError";
  }
}

/**
 * Nest's default RPC exception filter replaces every handler error with a plain `{ status, message }` object.
 * JetStreamServer runs each handler inside this store; the steering errors above record themselves in it on
 * construction, so the ack policy still sees a NonRetryableError/RetryAfterError when no BusExceptionFilter is
 * installed. Internal to @vp/bus.
 */
export const steeringErrors = new AsyncLocalStorage<{ last?: NonRetryableError | RetryAfterError }>();

function recordSteeringError(err: NonRetryableError | RetryAfterError) {
  const store = steeringErrors.getStore();
  if (store) store.last = err;
}
