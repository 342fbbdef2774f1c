import "reflect-metadata";
import type { LoggerService } from "@nestjs/common";
import { NestFactory } from "@nestjs/core";
import type { INestMicroservice } from "@nestjs/common";
import type { Logger } from "@vp/telemetry";
import { BusExceptionFilter, type JetStreamServer } from "./jetstream-server";

export interface CreateWorkerOptions {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  module: any;
  strategy: JetStreamServer;
  /** Nest's own log lines go through this pino logger; default: Nest's console logger. */
  logger?: Logger;
}

/** Creates and starts a Nest microservice on the JetStream transport, with BusExceptionFilter installed. */
export async function createWorker(options: CreateWorkerOptions): Promise<INestMicroservice> {
  const app = await NestFactory.createMicroservice(options.module, {
    strategy: options.strategy,
    logger: options.logger ? nestLogger(options.logger) : undefined,
  });
  app.useGlobalFilters(new BusExceptionFilter());
  await app.listen();
  return app;
}

/** Adapts a pino logger to Nest's LoggerService (object-first, with Nest's context as a field). */
export function nestLogger(logger: Logger): LoggerService {
  const log = logger.child({ component: "nest" });
  const split = (params: unknown[]) => {
    const context = params.length > 0 && typeof params[params.length - 1] === "string" ? (params.pop() as string) : undefined;
    return { context };
  };
  return {
    log: (message: unknown, ...params: unknown[]) => log.info(split(params), String(message)),
    error: (message: unknown, ...params: unknown[]) => {
      const { context } = split(params);
      if (message instanceof Error) log.error({ err: message, context }, message.message);
      else log.error({ context, stack: params[0] }, String(message));
    },
    warn: (message: unknown, ...params: unknown[]) => log.warn(split(params), String(message)),
    debug: (message: unknown, ...params: unknown[]) => log.debug(split(params), String(message)),
    verbose: (message: unknown, ...params: unknown[]) => log.trace(split(params), String(message)),
    fatal: (message: unknown, ...params: unknown[]) => log.fatal(split(params), String(message)),
  };
}
