import type { NodeRow, RunRow } from "@vp/db";
import { staleNodes, type KeyedNode } from "@vp/flow-graph/cache-key";
import { RunPlan, type MemberState, type PlanNode } from "../run-plan";
import type { ActiveRun } from "./active-runs";
import type { RunResources } from "./resources";

/** What building a run reads of its record: a new run's command gives the same fields. */
export type RunRecord = Pick<RunRow, "id" | "pipeline_id" | "node_ids"> & { force?: boolean };

/** The run's plan over `rows`, registered: from here its members' events advance it. */
export function buildRun(res: RunResources, record: RunRecord, rows: NodeRow[]): ActiveRun {
  const members = new Set(record.node_ids);
  const present = rows.filter((r) => members.has(r.id));
  // Completed members whose result no longer matches the graph wait like pending ones; launching re-keys them.
  const stale = staleNodes(rows as KeyedNode[]);
  // A forced run makes every member again, except what it has already made itself (a rebuild after a restart).
  const remade = (r: NodeRow) => record.force === true && !(r.status === "completed" && r.metadata?.runId === record.id);
  const planNodes: PlanNode[] = rows.map((r) => ({
    id: r.id,
    inputs: r.inputs,
    status: r.status,
    stateVersion: r.state_version,
    memberState: endedInRun(r, record.id) ?? ((stale.has(r.id) || remade(r)) && members.has(r.id) ? "waiting" : undefined),
  }));
  const run: ActiveRun = {
    id: record.id,
    pipelineId: record.pipeline_id,
    plan: new RunPlan(
      planNodes,
      present.map((r) => r.id),
    ),
    types: new Map(present.map((r) => [r.id, r.type])),
    titles: new Map(present.map((r) => [r.id, r.title])),
    upstream: new Map(present.map((r) => [r.id, [...new Set(Object.values(r.inputs ?? {}).flat())]])),
    force: record.force ?? false,
    finishing: false,
  };
  res.active.register(run);
  return run;
}

/** A member that already failed or was cancelled in this run keeps that state on a rebuild. */
export function endedInRun(row: NodeRow, runId: string): MemberState | undefined {
  if ((row.status === "failed" || row.status === "cancelled") && row.metadata?.runId === runId) return row.status;
  return undefined;
}

/** A forced run says so in its estimate (every member "execute"), which is what a rebuild can read back. */
export function runForced(record: Pick<RunRow, "metadata">): boolean {
  return record.metadata?.force === true;
}
