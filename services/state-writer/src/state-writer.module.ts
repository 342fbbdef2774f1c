import { Controller, Inject, Module, type DynamicModule } from "@nestjs/common";
import { Ctx, EventPattern, Payload } from "@nestjs/microservices";
import type { StateEvent } from "@vp/contracts";
import type { ConsumeContext } from "@vp/bus";

export const STATE_PATTERN = "state";
const HANDLERS = Symbol("state-writer handlers");

export interface StateWriterHandlers {
  applyStateEvent(event: StateEvent, ctx: ConsumeContext): Promise<void>;
}

/** Binds the VP_STATE consumer to the plain handler; all logic lives in handlers/. */
@Controller()
export class StateWriterController {
  constructor(@Inject(HANDLERS) private readonly handlers: StateWriterHandlers) {}

  @EventPattern(STATE_PATTERN)
  apply(@Payload() event: StateEvent, @Ctx() ctx: ConsumeContext) {
    return this.handlers.applyStateEvent(event, ctx);
  }
}

@Module({})
export class StateWriterModule {
  static with(handlers: StateWriterHandlers): DynamicModule {
    return { module: StateWriterModule, controllers: [StateWriterController], providers: [{ provide: HANDLERS, useValue: handlers }] };
  }
}
