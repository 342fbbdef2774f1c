import { listNodes, listRunningRuns, type NodeRow } from "@vp/db";
import type { ActiveRun } from "./active-runs";
import { buildRun, runForced, type RunRecord } from "./build";
import { proceed } from "./proceed";
import type { RunResources } from "./resources";
import { withVariableDefaults } from "@vp/runtime";

/** Builds, registers and starts a run over `rows` (the pipeline's nodes as read), then catches up. */
async function adopt(res: RunResources, record: RunRecord, rows: NodeRow[]): Promise<ActiveRun> {
  const run = buildRun(res, record, rows);
  await proceed(res, run, rows);
  return run;
}

/** On start: rebuild every running run from the database and carry on where it stopped. */
export async function resumeRuns(res: RunResources): Promise<number> {
  const running = await listRunningRuns(res.deps.db);
  for (const record of running) {
    if (res.active.has(record.id)) continue;
    const rows = await withVariableDefaults(res.deps.db, record.pipeline_id, await listNodes(res.deps.db, record.pipeline_id));
    await adopt(res, { ...record, force: runForced(record) }, rows);
    res.deps.logger.info({ runId: record.id, pipelineId: record.pipeline_id }, "run resumed");
  }
  return running.length;
}
