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
  const result = await requestRun(deps, pipelineId, { targetNodeId, retry, force });
  switch (result.outcome) {
    case "accepted":
      return c.json({ status: "accepted", run_id: result.runId, command_id: result.commandId }, 202);
    case "refused":
      return c.json(
        { error: result.reason, ...(result.problems ? { problems: result.problems } : {}), ...(result.estimate ? { estimate: result.estimate } : {}) },
        422,
      );
    case "running":
      return c.json({ status: "running", run_id: result.runId, node_ids: result.nodeIds, ...(result.estimate ? { estimate: result.estimate } : {}) });
  }
}

/** What starting a run needs of the gateway. */
export type RunDeps = Pick<GatewayDeps, "reader" | "bus" | "topology" | "logger" | "executeVerdictTimeoutMs">;

/** What became of a run request: running (recorded, first nodes dispatched), accepted (stored, verdict late) or refused by the scheduler. */
export type RunRequestResult =
  | { outcome: "running"; runId: string; nodeIds: string[]; estimate?: RunVerdict["estimate"] }
  | { outcome: "accepted"; runId: string; commandId: string }
  | { outcome: "refused"; runId: string; reason: string; problems?: unknown; estimate?: RunVerdict["estimate"] };

/**
 * startRun without the HTTP answer (the batch driver starts row pipelines with it). The gateway's own checks throw
 * HttpError 422 as for a request; `runId` names the run (a caller that records it first may ask again with it).
 */
export async function requestRun(
  deps: RunDeps,
  pipelineId: string,
  { targetNodeId, retry, force = false, runId = randomUUID() }: { targetNodeId?: string; retry?: { downstream: boolean }; force?: boolean; runId?: string },
): Promise<RunRequestResult> {
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
    return { outcome: "accepted", runId, commandId };
  }
  if (!verdict.ok) {
    deps.logger.info({ ...ids, reason: verdict.reason }, "run refused by scheduler");
    return { outcome: "refused", runId, reason: verdict.reason, problems: verdict.problems, estimate: verdict.estimate };
  }
  deps.logger.info({ ...ids, members: verdict.nodeIds.length }, "run started");
  return { outcome: "running", runId: verdict.runId, nodeIds: verdict.nodeIds, estimate: verdict.estimate };
}
