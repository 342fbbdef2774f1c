import { randomUUID } from "node:crypto";
import type { Context } from "hono";
import { HEADERS, type RunCommand, RunVerdict } from "@vp/contracts";
import { publish, waitForReply } from "@vp/bus";
import { getPipelineVariables, listNodes } from "@vp/db";
import { checkPipeline, formatProblems, lookup, type GraphNode } from "@vp/flow-graph";
import { nothingToRunReason, runMembers, staleNodes, type KeyedNode } from "@vp/flow-graph/cache-key";
import type { GatewayDeps } from "./deps";
import { readGateOf } from "./read-gate";
import { HttpError } from "./errors";
import { filledByDefaults, requireFilledByDefaults } from "./routes/variables";

/**
 * Starts a run ("run all", or "run to here" with a target): the whole graph is checked from the gateway's
 * read-only view first (one 422 listing every problem, node by node, before anything is published), then a
 * RunCommand is stored in JetStream and the scheduler's verdict awaited like an execute: 200 { status:
 * "running", run_id, node_ids } once the run is recorded and its first nodes dispatched, 422 when refused,
 * 202 when the verdict is late (stored, will run).
 */
export async function startRun(deps: GatewayDeps, c: Context, pipelineId: string, targetNodeId?: string, retry?: { downstream: boolean }, force = false) {
  const [stored, variables] = await Promise.all([
    readGateOf(deps).run(() => listNodes(deps.reader, pipelineId)),
    getPipelineVariables(deps.reader, pipelineId).then((v) => v ?? []),
  ]);
  // Keys and checks see each node as it will run: its placeholders filled from the variables' defaults.
  const rows = filledByDefaults(stored, variables);
  const stale = staleNodes(rows as KeyedNode[]);
  if (targetNodeId) {
    const target = rows.find((r) => r.id === targetNodeId);
    if (retry && target && target.status !== "failed" && target.status !== "cancelled") {
      throw new HttpError(422, `Node cannot be retried (status: ${target.status}); only failed or cancelled nodes are`);
    }
    if (target?.status === "completed" && !stale.has(target.id) && !force) {
      throw new HttpError(422, `Nothing to run: node ${targetNodeId} is already completed (force makes it again)`);
    }
  }
  const members = runMembers(rows as KeyedNode[], stale, { targetNodeId, retry: retry !== undefined, downstream: retry?.downstream, force });
  if (!members.length) throw new HttpError(422, nothingToRunReason(rows as KeyedNode[], { targetNodeId }));
  const problems = checkPipeline(rows as GraphNode[], members);
  if (problems.length) throw new HttpError(422, formatProblems(problems, lookup(rows as GraphNode[])), { problems });
  const memberIds = new Set(members);
  requireFilledByDefaults(
    stored.filter((r) => memberIds.has(r.id)),
    variables,
    stored,
  );

  const runId = randomUUID();
  const commandId = randomUUID();
  const command: RunCommand = {
    v: 1,
    kind: "run",
    commandId,
    runId,
    pipelineId,
    ...(targetNodeId ? { targetNodeId } : {}),
    ...(retry ? { retry: true, downstream: retry.downstream } : {}),
    ...(force ? { force: true } : {}),
    requestedAt: new Date().toISOString(),
  };
  const ids = { pipelineId, runId, commandId, targetNodeId };
  const verdict = await waitForReply(deps.bus, RunVerdict, deps.executeVerdictTimeoutMs, (inbox) =>
    publish(deps.bus, deps.topology.messages.run, command, { msgId: commandId, headers: { [HEADERS.replyTo]: inbox } }),
  );
  if (verdict === null) {
    deps.logger.warn(ids, "run accepted; scheduler verdict not received in time");
    return c.json({ status: "accepted", run_id: runId, command_id: commandId }, 202);
  }
  if (!verdict.ok) {
    deps.logger.info({ ...ids, reason: verdict.reason }, "run refused by scheduler");
    return c.json(
      { error: verdict.reason, ...(verdict.problems ? { problems: verdict.problems } : {}), ...(verdict.estimate ? { estimate: verdict.estimate } : {}) },
      422,
    );
  }
  deps.logger.info({ ...ids, members: verdict.nodeIds.length }, "run started");
  return c.json({ status: "running", run_id: verdict.runId, node_ids: verdict.nodeIds, ...(verdict.estimate ? { estimate: verdict.estimate } : {}) });
}
