import type { NodeType } from "@vp/contracts";
import type { RunPlan } from "../run-plan";

/** A run this scheduler drives: its plan, and what launching a member needs. */
export interface ActiveRun {
  id: string;
  pipelineId: string;
  plan: RunPlan;
  types: Map<string, NodeType>;
  /** Titles of the members: a dependant's cancel reason names its cause by title. */
  titles: Map<string, string>;
  /** Upstream ids of each member (to key it when it becomes ready). */
  upstream: Map<string, string[]>;
  /** Bypass the cache (results still fill it). */
  force: boolean;
  finishing: boolean;
  /** The pipeline was cancelled: nothing more is dispatched. */
  cancelling?: boolean;
}

const nodeKey = (pipelineId: string, nodeId: string) => `${pipelineId}/${nodeId}`;

/**
 * The runs held in memory, by run id and by member node. A node maps to the run registered last over it; a run
 * being unregistered releases only the nodes still mapped to itself.
 */
export class ActiveRuns {
  private readonly runs = new Map<string, ActiveRun>();
  private readonly byNode = new Map<string, ActiveRun>();

  register(run: ActiveRun): void {
    this.runs.set(run.id, run);
    for (const id of run.types.keys()) this.byNode.set(nodeKey(run.pipelineId, id), run);
  }

  unregister(run: ActiveRun): void {
    this.runs.delete(run.id);
    for (const id of run.types.keys()) if (this.byNode.get(nodeKey(run.pipelineId, id)) === run) this.byNode.delete(nodeKey(run.pipelineId, id));
  }

  get(runId: string): ActiveRun | undefined {
    return this.runs.get(runId);
  }

  has(runId: string): boolean {
    return this.runs.has(runId);
  }

  /** The run holding a node, if any. */
  holding(pipelineId: string, nodeId: string): ActiveRun | undefined {
    return this.byNode.get(nodeKey(pipelineId, nodeId));
  }

  /** The live map of runs by id (in registration order). */
  view(): ReadonlyMap<string, ActiveRun> {
    return this.runs;
  }
}
