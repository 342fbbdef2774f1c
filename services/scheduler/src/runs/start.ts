import type { GraphProblem, RunCommand } from "@vp/contracts";
import type { ConsumeContext } from "@vp/bus";
import { getCacheCosts, getPipeline, getRun, listNodes } from "@vp/db";
import { checkPipeline, formatProblems, lookup, maxCostOf, overBudgetReason, type GraphNode } from "@vp/flow-graph";
import { estimateMembers, nothingToRunReason, runMembers, staleNodes, type KeyedNode } from "@vp/flow-graph/cache-key";
import { buildRun, runForced } from "./build";
import { answerThenProceed } from "./proceed";
import type { RunResources } from "./resources";
import { fillFromDefaults, withVariableDefaults } from "@vp/runtime";

/** A run command: check the whole graph, record the run, dispatch what is ready. Redelivery-safe. */
export async function startRun(res: RunResources, cmd: RunCommand, ctx: ConsumeContext): Promise<void> {
  const { deps } = res;
  const refuse = (reason: string, problems?: GraphProblem[]) => {
    ctx.logger.info({ runId: cmd.runId, pipelineId: cmd.pipelineId, reason }, "run refused");
    deps.reply(ctx, { ok: false, reason, ...(problems ? { problems } : {}) });
  };
  const held = res.active.get(cmd.runId);
  if (held) return deps.reply(ctx, { ok: true, runId: held.id, nodeIds: [...held.types.keys()] });
  const recorded = await getRun(deps.db, cmd.runId);
  if (recorded) {
    const answer = () => deps.reply(ctx, { ok: true, runId: recorded.id, nodeIds: recorded.node_ids });
    if (recorded.status !== "running") return answer();
    const rows = await withVariableDefaults(deps.db, recorded.pipeline_id, await listNodes(deps.db, recorded.pipeline_id));
    return answerThenProceed(res, buildRun(res, { ...recorded, force: runForced(recorded) }, rows), rows, answer);
  }

  const stored = await listNodes(deps.db, cmd.pipelineId);
  const filled = await fillFromDefaults(deps.db, cmd.pipelineId, stored);
  const { rows } = filled;
  const stale = staleNodes(rows as KeyedNode[]);
  if (cmd.targetNodeId) {
    const target = rows.find((r) => r.id === cmd.targetNodeId);
    if (!target) return refuse("Node not found");
    if (cmd.retry && target.status !== "failed" && target.status !== "cancelled") {
      return refuse(`Node cannot be retried (status: ${target.status}); only failed or cancelled nodes are`);
    }
    if (target.status === "completed" && !stale.has(target.id) && !cmd.force)
      return refuse(`Nothing to run: node ${target.id} is already completed (force makes it again)`);
  }
  const members = runMembers(rows as KeyedNode[], stale, cmd);
  if (!members.length) return refuse(nothingToRunReason(rows as KeyedNode[], cmd));
  const problems = checkPipeline(rows as GraphNode[], members);
  if (problems.length) return refuse(formatProblems(problems, lookup(rows as GraphNode[])), problems);
  const unfilled = filled.unfilled(stored.filter((r) => members.includes(r.id)));
  if (unfilled.length) return refuse(`Give every variable these nodes use a default: ${formatProblems(unfilled, lookup(rows as GraphNode[]))}`, unfilled);
  const busy = members.map((id) => res.active.holding(cmd.pipelineId, id)).find(Boolean);
  if (busy) return refuse(`Pipeline already has run ${busy.id} over some of these nodes; cancel it or wait`);

  // Budget: what the members will cost, before anything is dispatched (cache hits and current results are free).
  const pipeline = await getPipeline(deps.db, cmd.pipelineId);
  const estimate = await estimateMembers(rows as KeyedNode[], members, stale, {
    force: cmd.force ?? false,
    maxCost: maxCostOf(pipeline?.config),
    costsOf: (keys) => getCacheCosts(deps.db, keys),
  });
  if (!estimate.withinBudget) {
    ctx.logger.info(
      { runId: cmd.runId, pipelineId: cmd.pipelineId, estimate: estimate.estimatedTotalCost, maxCost: estimate.maxCost },
      "run refused: over budget",
    );
    return deps.reply(ctx, { ok: false, reason: overBudgetReason(estimate), estimate });
  }

  const created = await deps.recordRun({
    v: 1,
    kind: "create",
    runId: cmd.runId,
    pipelineId: cmd.pipelineId,
    runKind: cmd.retry ? "retry" : cmd.targetNodeId ? "upstream" : "all",
    ...(cmd.targetNodeId ? { targetNodeId: cmd.targetNodeId } : {}),
    nodeIds: members,
    estimate,
    ...(cmd.force ? { force: true } : {}),
  });
  if (!created.ok) return refuse(created.reason);
  ctx.logger.info({ runId: cmd.runId, pipelineId: cmd.pipelineId, members: members.length, estimate: estimate.estimatedTotalCost }, "run started");
  const run = buildRun(res, { id: cmd.runId, pipeline_id: cmd.pipelineId, node_ids: members, force: cmd.force ?? false }, rows);
  await answerThenProceed(res, run, rows, () => deps.reply(ctx, { ok: true, runId: cmd.runId, nodeIds: members, estimate }));
}
