import type { PlanStep } from "../run-plan";
import { getCacheEntries, getNodes } from "@vp/db";
import { cacheKey, type KeyedNode } from "@vp/flow-graph/cache-key";
import type { ActiveRun } from "./active-runs";
import type { RunResources } from "./resources";
import { withVariableDefaults } from "@vp/runtime";

/** A completed member is current when its recorded key (if any) is the key it has now. */
function upToDate(row: KeyedNode, key: string | null): boolean {
  const recorded = row.metadata?.cacheKey;
  return typeof recorded !== "string" || recorded === key;
}

/** A run's job id for a member: deterministic, so a claim or dispatch repeated after a restart is idempotent. */
export const runJobId = (runId: string, nodeId: string) => `${runId}-${nodeId}`;

/** One wave's reads: the members' rows and their inputs' rows, and the cache entries of the members' keys. */
export async function readWave(
  res: RunResources,
  run: ActiveRun,
  chunk: readonly string[],
): Promise<{ rows: Map<string, KeyedNode>; hits: ReadonlySet<string> }> {
  const wanted = new Set(chunk);
  for (const nodeId of chunk) for (const up of run.upstream.get(nodeId) ?? []) wanted.add(up);
  const read = await getNodes(res.deps.db, run.pipelineId, [...wanted]);
  // Keyed and dispatched as they will run: placeholders filled from the pipeline's variable defaults.
  const rows = new Map((await withVariableDefaults(res.deps.db, run.pipelineId, read)).map((r) => [r.id, r as KeyedNode]));
  if (run.force) return { rows, hits: new Set() };
  // Keys of the members that may need work (a current completed member needs no lookup; a stale one does).
  const keys = new Set<string>();
  for (const nodeId of chunk) {
    const row = rows.get(nodeId);
    if (!row) continue;
    const key = cacheKey(row, rows);
    if (key && !(row.status === "completed" && upToDate(row, key))) keys.add(key);
  }
  return { rows, hits: new Set((await getCacheEntries(res.deps.db, [...keys])).keys()) };
}

/**
 * One member of a wave, its inputs all complete: key it (type, config, inputs' content) from the wave's rows.
 * Completed and still under the same key: up to date, nothing to do (unless the run is forced). Completed under
 * another key, or in a forced run: back to pending. Then the cache: a stored result for the key completes it at once (unless the run is forced);
 * otherwise it is claimed and dispatched with the key, so its result fills the cache. Returns the plan's next
 * step when the member ended here (completed, or found ended), for the caller to apply.
 */
export async function launchOne(
  res: RunResources,
  run: ActiveRun,
  nodeId: string,
  rows: ReadonlyMap<string, KeyedNode>,
  hits: ReadonlySet<string>,
): Promise<PlanStep | undefined> {
  const { deps, transition } = res;
  const jobId = runJobId(run.id, nodeId);
  const ids = { runId: run.id, pipelineId: run.pipelineId, nodeId };
  const row = rows.get(nodeId);
  const key = row ? cacheKey(row, rows) : null;
  if (row?.status === "completed") {
    const current = upToDate(row, key);
    if (current && !run.force) {
      deps.logger.info(ids, "run member up to date");
      return run.plan.observe(nodeId, "completed");
    }
    // Stale (its key moved), or a forced run, which makes every member again: back to pending, then dispatched.
    const reset = await transition({ v: 1, kind: "reset", pipelineId: run.pipelineId, nodeId, requestId: run.id, stale: true });
    if (!reset.ok) {
      deps.logger.warn({ ...ids, reason: reset.reason }, "completed member not reset");
      return reset.node ? run.plan.observe(nodeId, reset.node.status) : undefined;
    }
    if (current) deps.logger.info(ids, "run member made again: the run is forced");
    else deps.logger.info({ ...ids, from: row.metadata?.cacheKey, to: key }, "run member stale: its key changed");
  }
  if (key && !run.force && hits.has(key)) {
    const hit = await transition({ v: 1, kind: "complete-from-cache", pipelineId: run.pipelineId, nodeId, cacheKey: key, jobId, runId: run.id });
    if (hit.ok) {
      deps.logger.info({ ...ids, cacheKey: key, costSaved: hit.node.metadata?.costSaved }, "run member completed from cache");
      return run.plan.observe(nodeId, "completed");
    }
    if (hit.code !== "not_found") {
      deps.logger.info({ ...ids, reason: hit.reason }, "run member not completed from cache");
      return hit.node ? run.plan.observe(nodeId, hit.node.status) : undefined;
    }
  }
  const claimed = await transition({
    v: 1,
    kind: "claim-queued",
    pipelineId: run.pipelineId,
    nodeId,
    jobId,
    runId: run.id,
    ...(key ? { cacheKey: key } : {}),
  });
  if (!claimed.ok) {
    // Someone else holds the node (a single execute) or it ended: follow what it is now.
    deps.logger.info({ ...ids, reason: claimed.reason }, "run member not claimed");
    return claimed.node ? run.plan.observe(nodeId, claimed.node.status) : undefined;
  }
  await deps.dispatch({ v: 1, jobId, pipelineId: run.pipelineId, nodeId, type: run.types.get(nodeId)!, dispatchedAt: new Date().toISOString() });
  deps.logger.info({ ...ids, jobId }, "run member dispatched");
  return undefined;
}
