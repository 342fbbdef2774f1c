import { Controller, Inject, Module, type DynamicModule } from "@nestjs/common";
import { Ctx, EventPattern, Payload } from "@nestjs/microservices";
import type { CancelCommand, ExecuteCommand, NodeChanged, RunCommand, SchedulerCommand } from "@vp/contracts";
import type { ConsumeContext } from "@vp/bus";

/** VP_COMMANDS (`vp.cmd.>`: execute and run commands, one consumer). */
export const EXECUTE_PATTERN = "execute";
/** VP_EVENTS (`vp.events.>`): committed node changes that advance runs. */
export const EVENTS_PATTERN = "events";
const HANDLERS = Symbol("scheduler handlers");

export interface SchedulerHandlers {
  execute(cmd: ExecuteCommand, ctx: ConsumeContext): Promise<void>;
  run(cmd: RunCommand, ctx: ConsumeContext): Promise<void>;
  cancel(cmd: CancelCommand, ctx: ConsumeContext): Promise<void>;
  event(event: NodeChanged, ctx: ConsumeContext): Promise<void>;
}

/** Binds the VP_COMMANDS and VP_EVENTS consumers to the plain handlers; all logic lives in handlers/. */
@Controller()
export class SchedulerController {
  constructor(@Inject(HANDLERS) private readonly handlers: SchedulerHandlers) {}

  @EventPattern(EXECUTE_PATTERN)
  execute(@Payload() cmd: SchedulerCommand, @Ctx() ctx: ConsumeContext) {
    if (cmd.kind === "run") return this.handlers.run(cmd, ctx);
    if (cmd.kind === "cancel") return this.handlers.cancel(cmd, ctx);
    return this.handlers.execute(cmd, ctx);
  }

  @EventPattern(EVENTS_PATTERN)
  event(@Payload() event: NodeChanged, @Ctx() ctx: ConsumeContext) {
    return this.handlers.event(event, ctx);
  }
}

@Module({})
export class SchedulerModule {
  static with(handlers: SchedulerHandlers): DynamicModule {
    return { module: SchedulerModule, controllers: [SchedulerController], providers: [{ provide: HANDLERS, useValue: handlers }] };
  }
}
