import type { RunReply, RunRequest } from "@vp/contracts";
import { createRun, finishRun, toSerializedRun, type Queryable } from "@vp/db";

/**
 * Run records (video_production_runs) are execution state, so the scheduler (vp_reader) asks the state-writer
 * to write them. Both requests are idempotent: creating the same run id again returns the stored run, and a
 * run finishes once.
 */
export function createRunRecordHandler({ db }: { db: Queryable }) {
  return async (req: RunRequest): Promise<RunReply> => {
    if (req.kind === "create") {
      const run = await createRun(db, {
        id: req.runId,
        pipelineId: req.pipelineId,
        kind: req.runKind,
        targetNodeId: req.targetNodeId,
        nodeIds: req.nodeIds,
        metadata: { ...(req.estimate ? { estimate: req.estimate } : {}), ...(req.force ? { force: true } : {}) },
      });
      return { ok: true, run: toSerializedRun(run) };
    }
    const run = await finishRun(db, { id: req.runId, status: req.status, summary: req.summary });
    return run ? { ok: true, run: toSerializedRun(run) } : { ok: false, reason: `Run ${req.runId} not found` };
  };
}
