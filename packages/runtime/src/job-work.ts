import { withSpan } from "@vp/telemetry";
import type { WorkContext, WorkFunction, WorkResult } from "./work";

/** Runs the node type's work function inside one span per attempt, named for the type. */
export function runWork(work: WorkFunction, context: WorkContext): Promise<WorkResult> {
  const { job, attempt } = context;
  const spanAttributes = {
    "vp.pipeline.id": job.pipelineId,
    "vp.node.id": job.nodeId,
    "vp.job.id": job.jobId,
    "vp.node.type": job.type,
    "vp.job.attempt": attempt,
  };
  return withSpan(`job ${job.type}`, { attributes: spanAttributes }, () => work(context));
}
