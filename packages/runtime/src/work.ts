import type { JobMessage, NodeOutput, SerializedNode } from "@vp/contracts";
import type { Storage } from "@vp/storage";
import type { Logger } from "@vp/telemetry";

/**
 * What the job runner hands to a node type's work function once the node is claimed (in_progress for
 * this job and attempt). The runner owns claiming, heartbeats and publishing the result; a work function
 * only turns inputs into one stored output.
 */
export interface WorkContext {
  job: JobMessage;
  attempt: number;
  node: SerializedNode;
  /** Upstream nodes per input slot, in the order the node's `inputs` lists them. */
  inputs: Record<string, SerializedNode[]>;
  storage: Storage;
  /** A fresh directory owned by this job attempt; the runner deletes it afterwards. */
  workDir: string;
  /** Aborted on cancel, timeout or shutdown: kill child processes and throw. */
  signal: AbortSignal;
  /** Percent done, 0-100. The runner throttles what it forwards. */
  progress(percent: number): void;
  logger: Logger;
}

export interface WorkResult {
  output: NodeOutput;
  /** US dollars this work cost (compute or provider charges). */
  cost: number;
}

export type WorkFunction = (ctx: WorkContext) => Promise<WorkResult>;

/**
 * Thrown by a work function when the node's inputs or config make the work impossible (a segment without
 * output, a file that is not media, ffmpeg rejecting the data). No retry can fix it: the node fails at
 * once with this message.
 */
export class WorkInputError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "WorkInputError";
  }
}
