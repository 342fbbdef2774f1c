import { createInbox, errors as natsErrors, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from "@nats-io/nats-core";

/**
 * Why a reply did not come: the deadline passed, nobody listens on the subject (NATS answers 503 with no data),
 * the connection is closed or refused the publish, or the server denied this user the publish (permissions). Callers turn these into their own typed errors
 * (publish.ts: BusUnavailableError; rpc.ts: RequestTimeoutError / BusUnavailableError).
 */
export class ReplyError extends Error {
  constructor(
    readonly kind: "timeout" | "no_responders" | "closed" | "denied",
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "ReplyError";
  }
}

interface Outgoing {
  token: string;
  subject: string;
  data: Uint8Array;
  headers?: MsgHdrs;
}

interface Pending {
  resolve: (msg: Msg) => void;
  reject: (error: ReplyError) => void;
  deadline: number;
  subject: string;
}

/**
 * One reply inbox per connection for every request it makes: JetStream publish acks and RPC replies.
 *
 * A request publishes with reply subject `<inbox>.<token>` and waits in a Map; one wildcard subscription takes
 * every reply and resolves its request, and one timer (running only while requests wait) rejects those past their
 * deadline. nats.js's own request path does the same job with more per call: a timer, a Promise.race and, after
 * every answer, a cancel that builds (and captures the stack of) an error nobody reads. Per request that is about
 * half of a JetStream publish's CPU in the state-writer (bench/state-writer.bench.ts).
 *
 * Requests made during one turn of the event loop are written together, at the end of the turn (setImmediate), in
 * the order they were made: nats.js writes its buffer to the socket once per microtask checkpoint, so publishes
 * made from separate I/O callbacks (each statement's result arrives in its own) would each cost a socket write here
 * and a read in nats-server. A request is therefore on the wire at the end of the current turn, not at once;
 * callers that need ordering against their own other messages await the reply first, as every caller here does.
 *
 * The subscription lives as long as the connection (NATS re-subscribes it after a reconnect, so an ack that
 * arrives after a reconnect still finds its request); when the connection closes every waiting request is
 * rejected at once instead of at its deadline.
 */
export class Replies {
  private readonly prefix: string;
  private readonly pending = new Map<string, Pending>();
  private readonly sub: Subscription;
  private next = 0;
  private outbox: Outgoing[] = [];
  private sweeper: NodeJS.Timeout | undefined;
  private closed: Error | undefined;

  constructor(private readonly nc: NatsConnection) {
    this.prefix = `${createInbox((nc as { options?: { inboxPrefix?: string } }).options?.inboxPrefix)}.`;
    this.sub = nc.subscribe(`${this.prefix}*`, { callback: (err, msg) => (err ? this.fail(err) : this.answer(msg)) });
    void nc.closed().then((err) => this.fail(err ?? new Error("connection closed")));
    void this.watchDenials();
  }

  /** A publish outside the user's permissions is dropped by the server with an -ERR: fail its requests now, not at their deadline. */
  private async watchDenials(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type !== "error" || !(s.error instanceof natsErrors.PermissionViolationError) || s.error.operation !== "publish") continue;
      const denied = s.error;
      for (const [token, p] of this.pending) {
        if (p.subject !== denied.subject) continue;
        this.settled(token);
        p.reject(new ReplyError("denied", `the NATS user may not publish to ${denied.subject}`, { cause: denied }));
      }
    }
  }

  /** Publishes `data` to `subject` and resolves with the first reply (a 503 "no responders" rejects instead). */
  request(subject: string, data: Uint8Array, options: { headers?: MsgHdrs; timeoutMs: number }): Promise<Msg> {
    if (this.closed) return Promise.reject(new ReplyError("closed", `NATS connection closed: ${this.closed.message}`, { cause: this.closed }));
    const token = (this.next++).toString(36);
    return new Promise<Msg>((resolve, reject) => {
      this.pending.set(token, { resolve, reject, deadline: performance.now() + options.timeoutMs, subject });
      if (this.outbox.length === 0) setImmediate(() => this.send());
      this.outbox.push({ token, subject, data, headers: options.headers });
      this.sweeper ??= setInterval(() => this.sweep(), 20).unref();
    });
  }

  /** Hands this turn's requests to nats.js in order; it writes them to the socket in one write. */
  private send(): void {
    const outbox = this.outbox;
    this.outbox = [];
    for (const out of outbox) {
      const p = this.pending.get(out.token);
      if (!p) continue; // Failed while queued (the connection closed).
      try {
        this.nc.publish(out.subject, out.data, { reply: this.prefix + out.token, headers: out.headers });
      } catch (err) {
        this.settled(out.token);
        p.reject(new ReplyError("closed", `could not publish to ${out.subject}: ${err instanceof Error ? err.message : String(err)}`, { cause: err }));
      }
    }
  }

  /** Requests waiting for their reply (for tests and metrics). */
  get waiting(): number {
    return this.pending.size;
  }

  private answer(msg: Msg): void {
    const token = msg.subject.slice(this.prefix.length);
    const p = this.pending.get(token);
    if (!p) return; // Late: its request already timed out.
    this.settled(token);
    if (msg.data.length === 0 && msg.headers?.code === 503) p.reject(new ReplyError("no_responders", `no responders on ${p.subject}`));
    else p.resolve(msg);
  }

  private settled(token: string): void {
    this.pending.delete(token);
    if (this.pending.size === 0 && this.sweeper) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  private sweep(): void {
    const now = performance.now();
    for (const [token, p] of this.pending) {
      if (p.deadline > now) continue;
      this.settled(token);
      p.reject(new ReplyError("timeout", `no reply on ${p.subject} in time`));
    }
  }

  private fail(err: Error): void {
    this.closed ??= err;
    for (const [token, p] of this.pending) {
      this.settled(token);
      p.reject(new ReplyError("closed", `NATS connection closed: ${err.message}`, { cause: err }));
    }
    if (!this.sub.isClosed()) this.sub.unsubscribe();
  }
}

const byConnection = new WeakMap<NatsConnection, Replies>();

/** The connection's reply inbox, made on first use. */
export function repliesOf(nc: NatsConnection): Replies {
  let replies = byConnection.get(nc);
  if (!replies) byConnection.set(nc, (replies = new Replies(nc)));
  return replies;
}
