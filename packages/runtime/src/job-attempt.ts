import type { JobMessage } from "@vp/contracts";
import type { ConsumeContext } from "@vp/bus";
import type { Logger } from "@vp/telemetry";

/** One delivery of a job once its claim succeeded: what the attempt's parts report under. */
export interface ClaimedAttempt {
  job: JobMessage;
  ctx: ConsumeContext;
  /** The database's attempt counter (it orders attempts), not JetStream's delivery count. */
  attempt: number;
  ids: { pipelineId: string; nodeId: string; jobId: string; attempt: number };
  /** ctx.logger with the ids and the delivery count. */
  logger: Logger;
}
