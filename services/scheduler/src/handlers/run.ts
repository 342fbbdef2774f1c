import type { CancelCommand, NodeChanged, RunCommand } from "@vp/contracts";
import type { ConsumeContext } from "@vp/bus";
import type { RunPlan } from "../run-plan";
import { cancelRuns } from "../runs/cancel";
import { advance } from "../runs/proceed";
import { createRunResources, type RunDeps } from "../runs/resources";
import { resumeRuns } from "../runs/resume";
import { startRun } from "../runs/start";

export type { RunDeps } from "../runs/resources";
export { MAX_TRANSITIONS_IN_FLIGHT } from "../runs/resources";
export { LAUNCH_CHUNK } from "../runs/launch";
export { runJobId } from "../runs/member";
export { summarise } from "../runs/finish";

/**
 * The DAG engine of pipeline runs. A run command is checked as a whole (checkPipeline: every problem at once),
 * recorded through the state-writer, and its members' readiness kept in a RunPlan (pending-input counters).
 * Committed events of members (the scheduler-events consumer) drive it: a completion decrements its
 * dependants' counters and dispatches those at zero through the same guarded claim as a single execute;
 * a failure or cancellation cancels every dependant through the state-writer ("upstream "<title>" (<id>) failed") while
 * independent branches go on. How many run at once is bounded by the executors' consumers (max ack pending).
 *
 * The plans live in memory and are rebuilt from the database on start (`resume`): the runs table keeps each
 * run's members, the nodes keep their statuses (metadata.runId tells which failures belong to the run).
 * One scheduler replica drives runs; a second would ignore events of runs it does not hold.
 *
 * The parts live in ../runs: building a run from rows (build), launching ready members (launch) and deciding
 * each one's fate from the cache and its key (member), a run's first step and its progress on events (proceed),
 * finishing (finish), the run and cancel commands (start, cancel) and the rebuild on start (resume). They share
 * one RunResources: the dependencies, the active runs and the per-pipeline limited transitions.
 */
export function createRunCoordinator(deps: RunDeps) {
  const res = createRunResources(deps);
  return {
    start: (cmd: RunCommand, ctx: ConsumeContext): Promise<void> => startRun(res, cmd, ctx),
    cancel: (cmd: CancelCommand, ctx: ConsumeContext): Promise<void> => cancelRuns(res, cmd, ctx),
    onEvent: (event: NodeChanged): Promise<void> => advance(res, event),
    resume: (): Promise<number> => resumeRuns(res),
    active: (): ReadonlyMap<string, { pipelineId: string; plan: RunPlan }> => res.active.view(),
  };
}
