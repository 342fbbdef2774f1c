import type { DocumentProblem } from "@vp/flow-graph";

/** A failed call to the gateway, with the reason to show. `status` 0 means the gateway was unreachable. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly problems?: Array<DocumentProblem & { text?: string }>,
    /** The whole JSON answer (a refused run's `estimate`, say). */
    readonly body?: unknown,
  ) {
    super(message);
    this.name = "ApiError";
  }
  get unreachable(): boolean {
    return this.status === 0 || this.status === 503;
  }
}
