import "reflect-metadata";
import { Catch, type RpcExceptionFilter } from "@nestjs/common";
import { Server, type CustomTransportStrategy, type MessageHandler } from "@nestjs/microservices";
import type { ConsumerSpec } from "@vp/contracts";
import type { Logger } from "@vp/telemetry";
import { lastValueFrom, throwError, type Observable } from "rxjs";
import type { z } from "zod";
import type { Bus } from "../connect";
import { type NonRetryableError, type RetryAfterError, steeringErrors } from "../errors";
import { consume, type ConsumeContext, type ConsumerHandle, type GiveUpInfo, type InvalidMessageInfo } from "../consume";

/**
 * NestJS custom transport over the bus: each `@EventPattern(pattern)` handler is fed by consume() with the
 * consumer bound to that pattern, so Nest workers get exactly the same ack policy as plain ones.
 *
 * ```ts
 * @Controller()
 * class JobsController {
 *   // tsx/esbuild emit no decorator metadata: inject constructor dependencies by token.
 *   constructor(@Inject(HANDLE_MERGE) private readonly handle: (job: JobMessage, ctx: ConsumeContext) => Promise<void>) {}
 *
 *   @EventPattern("merge-videos")
 *   run(@Payload() job: JobMessage, @Ctx() ctx: ConsumeContext) {
 *     return this.handle(job, ctx); // throw NonRetryableError / RetryAfterError to steer the ack
 *   }
 * }
 *
 * const app = await createWorker({
 *   module: WorkerModule,
 *   strategy: new JetStreamServer({ bus, logger, bindings: { "merge-videos": { consumer: topology.consumers.job("merge-videos"), schema: JobMessage, onGiveUp } } }),
 *   logger,
 * });
 * ```
 *
 * Nest's default RPC exception filter replaces every error with `{ status: "error", message: "Internal server
 * error" }` (and with `logger: false` logs nothing). NonRetryableError/RetryAfterError still reach the ack policy
 * (see `steeringErrors`), but other errors lose their message, so the node would fail with "Internal server
 * error". createWorker() installs BusExceptionFilter; when you call NestFactory.createMicroservice yourself,
 * call `app.useGlobalFilters(new BusExceptionFilter())` before `listen()`.
 */
export interface JetStreamBinding<S extends z.ZodType = z.ZodType> {
  consumer: ConsumerSpec;
  schema: S;
  onGiveUp?: (payload: z.output<S>, info: GiveUpInfo) => Promise<void>;
  onInvalid?: (info: InvalidMessageInfo) => Promise<void> | void;
  concurrency?: number;
}

export interface JetStreamServerOptions {
  bus: Bus | (() => Promise<Bus>);
  /** pattern (as in @EventPattern) -> the consumer that feeds it. */
  bindings: Record<string, JetStreamBinding<any>>;
  logger: Logger;
  /**
   * How long close() lets in-flight handlers finish before interrupting them and handing their messages back
   * (consume's stopTimeoutMs); services derive it from SHUTDOWN_GRACE_MS. Default: consume's (10 s).
   */
  stopTimeoutMs?: number;
}

export class JetStreamServer extends Server implements CustomTransportStrategy {
  private bus: Bus | undefined;
  private consumers: ConsumerHandle[] = [];
  private warnedAboutFilter = false;

  constructor(private readonly options: JetStreamServerOptions) {
    super();
  }

  async listen(callback: (...optionalParams: unknown[]) => any): Promise<void> {
    try {
      const patterns = [...this.messageHandlers.keys()];
      const unbound = patterns.filter((p) => !this.options.bindings[p]);
      if (unbound.length > 0) {
        throw new Error(`JetStreamServer: no consumer bound to pattern(s) ${unbound.join(", ")}; add them to bindings`);
      }
      const bus = typeof this.options.bus === "function" ? await this.options.bus() : this.options.bus;
      this.bus = bus;
      for (const [pattern, handler] of this.messageHandlers) {
        const binding = this.options.bindings[pattern]!;
        this.consumers.push(
          consume({
            bus,
            consumer: binding.consumer,
            schema: binding.schema,
            logger: this.options.logger.child({ pattern }),
            concurrency: binding.concurrency,
            onGiveUp: binding.onGiveUp,
            onInvalid: binding.onInvalid,
            stopTimeoutMs: this.options.stopTimeoutMs,
            handler: (payload, ctx) => this.invoke(handler, payload, ctx),
          }),
        );
      }
      const unused = Object.keys(this.options.bindings).filter((p) => !this.messageHandlers.has(p));
      if (unused.length > 0) this.options.logger.warn({ patterns: unused }, "bindings without an @EventPattern handler");
      this.options.logger.info({ patterns }, "JetStream transport listening");
      callback();
    } catch (err) {
      await this.close();
      callback(err);
    }
  }

  async close(): Promise<void> {
    const consumers = this.consumers;
    this.consumers = [];
    await Promise.all(consumers.map((c) => c.stop()));
  }

  on(): never {
    throw new Error("JetStreamServer has no events; watch the bus connection's status instead");
  }

  unwrap<T>(): T {
    if (!this.bus) throw new Error("JetStreamServer is not listening yet");
    return this.bus as T;
  }

  private invoke(handler: MessageHandler, payload: unknown, ctx: ConsumeContext): Promise<void> {
    const store: { last?: NonRetryableError | RetryAfterError } = {};
    return steeringErrors.run(store, async () => {
      try {
        const result = await handler(payload, ctx);
        await lastValueFrom(this.transformToObservable(result), { defaultValue: undefined });
      } catch (err) {
        throw this.unwrapNestError(err, store.last, ctx);
      }
    });
  }

  /**
   * Without BusExceptionFilter, Nest's default filter hands us `{ status: "error", message: "Internal server
   * error" }` instead of the handler's error. Steering errors are recovered from the delivery's store; the
   * message of any other error is lost, so say how to fix that.
   */
  private unwrapNestError(err: unknown, steering: NonRetryableError | RetryAfterError | undefined, ctx: ConsumeContext): unknown {
    if (err instanceof Error) return err;
    if (steering) return steering;
    if (!this.warnedAboutFilter) {
      this.warnedAboutFilter = true;
      ctx.logger.warn(
        "Nest's exception filter replaced a handler error; install BusExceptionFilter (createWorker does, or app.useGlobalFilters(new BusExceptionFilter())) to keep error messages",
      );
    }
    const message = err && typeof err === "object" && "message" in err ? String((err as { message: unknown }).message) : String(err);
    return new Error(message);
  }
}

/** Passes handler errors through unchanged so consume() sees NonRetryableError/RetryAfterError. */
@Catch()
export class BusExceptionFilter implements RpcExceptionFilter<unknown> {
  catch(exception: unknown): Observable<never> {
    return throwError(() => exception);
  }
}
