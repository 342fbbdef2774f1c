import { Controller, Inject, Module, type DynamicModule } from "@nestjs/common";
import { Ctx, EventPattern, Payload } from "@nestjs/microservices";
import type { ExecuteCommand } from "@vp/contracts";
import type { ConsumeContext } from "@vp/bus";

export const EXECUTE_PATTERN = "execute";
const HANDLERS = Symbol("scheduler handlers");

export interface SchedulerHandlers {
  execute(cmd: ExecuteCommand, ctx: ConsumeContext): Promise<void>;
}

/** Binds the VP_COMMANDS consumer to the plain handler; all logic lives in handlers/. */
@Controller()
export class SchedulerController {
  constructor(@Inject(HANDLERS) private readonly handlers: SchedulerHandlers) {}

  @EventPattern(EXECUTE_PATTERN)
  execute(@Payload() cmd: ExecuteCommand, @Ctx() ctx: ConsumeContext) {
    return this.handlers.execute(cmd, ctx);
  }
}

@Module({})
export class SchedulerModule {
  static with(handlers: SchedulerHandlers): DynamicModule {
    return { module: SchedulerModule, controllers: [SchedulerController], providers: [{ provide: HANDLERS, useValue: handlers }] };
  }
}
