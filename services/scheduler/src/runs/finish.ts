import { getNodes, type NodeRow } from "@vp/db";
import type { ActiveRun } from "./active-runs";
import type { RunResources } from "./resources";

/** Once every member has ended: records the run's status and summary through the state-writer, then lets it go. */
export async function maybeFinish(res: RunResources, run: ActiveRun): Promise<void> {
  const { deps } = res;
  if (!run.plan.done || run.finishing) return;
  run.finishing = true;
  const counts = run.plan.counts();
  const status = counts.failed > 0 ? "failed" : counts.cancelled > 0 ? "cancelled" : "completed";
  const summary = { counts, ...summarise(run.id, await getNodes(deps.db, run.pipelineId, [...run.types.keys()])) };
  const reply = await deps.recordRun({ v: 1, kind: "finish", runId: run.id, status, summary });
  if (!reply.ok) deps.logger.warn({ runId: run.id, reason: reply.reason }, "run not finished");
  res.active.unregister(run);
  deps.logger.info({ runId: run.id, pipelineId: run.pipelineId, status, counts, executed: summary.executed, cached: summary.cached }, "run finished");
}

/** What a finished run did, from its members' rows: made here, taken from the cache, already current; costs. */
export function summarise(runId: string, rows: NodeRow[]) {
  let executed = 0;
  let cached = 0;
  let upToDate = 0;
  let totalCost = 0;
  let costSaved = 0;
  const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : 0);
  for (const r of rows) {
    if (r.status !== "completed") continue;
    const m = r.metadata ?? {};
    if (m.runId === runId && m.cached === true) {
      cached += 1;
      costSaved += num(m.costSaved);
    } else if (m.runId === runId) {
      executed += 1;
      totalCost += num(m.cost);
    } else {
      upToDate += 1;
      costSaved += num(m.cost) + num(m.costSaved);
    }
  }
  const round = (n: number) => Math.round(n * 1e6) / 1e6;
  return { executed, cached, upToDate, totalCost: round(totalCost), costSaved: round(costSaved) };
}
