import { randomUUID } from "node:crypto";
import { Hono, type Context } from "hono";
import { z } from "zod";
import { type CancelCommand, CancelVerdict, HEADERS } from "@vp/contracts";
import { publish, waitForReply } from "@vp/bus";
import { getCacheCosts, getPipeline, getPipelineVariables, listNodes, listRuns, toSerializedRun, type Queryable } from "@vp/db";
import { unfilledProblems } from "@vp/flow-graph/variables";
import { checkPipeline, maxCostOf, type GraphNode } from "@vp/flow-graph";
import { estimateMembers, runMembers, staleNodes, type KeyedNode } from "@vp/flow-graph/cache-key";
import type { GatewayDeps } from "../deps";
import { sharedJson } from "../read-gate";
import { HttpError, zodMessage } from "../errors";
import { requireNode, requirePipeline } from "../pipeline-access";
import { startRun } from "../start-run";
import { noBody, optionalBody } from "../validation";
import { filledByDefaults } from "./variables";

const RetryBody = z.strictObject({ downstream: z.boolean().optional(), force: z.boolean().optional() });
const RunAllBody = z.strictObject({ force: z.boolean().optional() });

const RunsQuery = z.object({ limit: z.coerce.number().int().min(1).max(200).default(50) });
/** A boolean in the query: "true" or "false" (absent: false); anything else is a mistake, not a quiet false. */
const BooleanQuery = z.enum(["true", "false"]).optional();

/** What "run all" would cost now (the same computation the scheduler's budget check makes), and the graph's problems. */
export async function pipelineEstimate(reader: Queryable, pipelineId: string, force: boolean) {
  const [pipeline, stored] = await Promise.all([getPipeline(reader, pipelineId), listNodes(reader, pipelineId)]);
  // Keyed as a run keys them: placeholders filled from the variables' defaults.
  const variables = pipeline?.variables ?? [];
  const rows = filledByDefaults(stored, variables);
  const stale = staleNodes(rows as KeyedNode[]);
  const members = runMembers(rows as KeyedNode[], stale, {});
  const estimate = await estimateMembers(rows as KeyedNode[], members, stale, {
    force,
    maxCost: maxCostOf(pipeline?.config),
    costsOf: (keys) => getCacheCosts(reader, keys),
  });
  const memberIds = new Set(members);
  const unfilled = unfilledProblems(
    stored.filter((r) => memberIds.has(r.id)),
    variables,
    {},
  );
  return { estimate, problems: [...checkPipeline(rows as GraphNode[], members), ...unfilled] };
}

/** What became of a cancel: applied (the ids cancelled), refused with the reason, or accepted (stored, verdict late). */
export type CancelResult = { outcome: "cancelled"; cancelled: string[] } | { outcome: "refused"; reason: string } | { outcome: "accepted"; commandId: string };

/** Cancels a pipeline's queued and running work (or one node's) through the scheduler, which holds the runs. */
export async function requestCancel(
  deps: Pick<GatewayDeps, "bus" | "topology" | "logger" | "executeVerdictTimeoutMs">,
  pipelineId: string,
  nodeId?: string,
): Promise<CancelResult> {
  const commandId = randomUUID();
  const command: CancelCommand = {
    v: 1,
    kind: "cancel",
    commandId,
    pipelineId,
    ...(nodeId ? { nodeId } : {}),
    by: "user",
    requestedAt: new Date().toISOString(),
  };
  const verdict = await waitForReply(deps.bus, CancelVerdict, deps.executeVerdictTimeoutMs, (inbox) =>
    publish(deps.bus, deps.topology.messages.cancel, command, { msgId: commandId, headers: { [HEADERS.replyTo]: inbox } }),
  );
  const ids = { pipelineId, nodeId, commandId };
  if (verdict === null) {
    deps.logger.warn(ids, "cancel accepted; scheduler verdict not received in time");
    return { outcome: "accepted", commandId };
  }
  if (!verdict.ok) return { outcome: "refused", reason: verdict.reason };
  deps.logger.info({ ...ids, cancelled: verdict.cancelled.length }, "cancelled");
  return { outcome: "cancelled", cancelled: verdict.cancelled };
}

/**
 * Cancel through the scheduler (it holds the runs): 200 { status: "cancelled", cancelled: [ids] }, 422 when the
 * node cannot be cancelled (completed, failed), 202 when the verdict is late (stored, will be applied).
 */
async function cancel(deps: GatewayDeps, c: Context, pipelineId: string, nodeId?: string) {
  const result = await requestCancel(deps, pipelineId, nodeId);
  if (result.outcome === "accepted") return c.json({ status: "accepted", command_id: result.commandId }, 202);
  if (result.outcome === "refused") return c.json({ error: result.reason }, 422);
  return c.json({ status: "cancelled", cancelled: result.cancelled });
}

/** POST /pipelines/:pipeline_id/execute (run all) and GET /pipelines/:pipeline_id/runs (run history, newest first). */
export function runRoutes(deps: GatewayDeps) {
  const app = new Hono();

  app.post("/:pipeline_id/execute", async (c) => {
    const pipeline = await requirePipeline(deps.reader, c);
    const body = await optionalBody(c, RunAllBody);
    return startRun(deps, c, pipeline.id, undefined, undefined, body.force ?? false);
  });

  /**
   * GET /pipelines/:pipeline_id/estimate[?force=true]: what "run all" would cost before it starts (per node:
   * execute with its estimate, cached with the cost saved, or up to date), against the pipeline's maxCost, and
   * every graph problem node by node.
   */
  app.get("/:pipeline_id/estimate", async (c) => {
    const pipeline = await requirePipeline(deps.reader, c);
    const force = BooleanQuery.safeParse(c.req.query("force"));
    if (!force.success) throw new HttpError(422, 'force: must be "true" or "false"');
    const body = await sharedJson(deps, `estimate:${pipeline.id}:${force.data === "true"}`, () =>
      pipelineEstimate(deps.reader, pipeline.id, force.data === "true"),
    );
    return c.body(body, 200, { "content-type": "application/json" });
  });

  /**
   * GET /pipelines/:pipeline_id/outdated: `{ node_ids }`, the completed nodes whose result no longer matches the
   * graph (their config, asset or an input changed since it was made: the cache key knows). A run makes them again.
   */
  app.get("/:pipeline_id/outdated", async (c) => {
    const pipeline = await requirePipeline(deps.reader, c);
    const body = await sharedJson(deps, `outdated:${pipeline.id}`, async () => {
      const [stored, variables] = await Promise.all([listNodes(deps.reader, pipeline.id), getPipelineVariables(deps.reader, pipeline.id)]);
      // A changed default changes the key of every node that uses the variable: those results are outdated.
      const rows = filledByDefaults(stored, variables ?? []);
      const stale = staleNodes(rows as KeyedNode[]);
      return { node_ids: rows.filter((r) => stale.has(r.id)).map((r) => r.id) };
    });
    return c.body(body, 200, { "content-type": "application/json" });
  });

  /**
   * POST /pipelines/:pipeline_id/nodes/:id/retry `{ downstream? }`: a failed or cancelled node goes back to
   * pending through the state-writer (its error kept in metadata.history) and runs, as a run of kind "retry";
   * with downstream its dependants that are not completed run after it.
   */
  app.post("/:pipeline_id/nodes/:id/retry", async (c) => {
    const { pipeline, node } = await requireNode(deps.reader, c);
    const body = await optionalBody(c, RetryBody);
    return startRun(deps, c, pipeline.id, node.id, { downstream: body.downstream ?? false }, body.force ?? false);
  });

  app.post("/:pipeline_id/cancel", async (c) => {
    const pipeline = await requirePipeline(deps.reader, c);
    await noBody(c);
    return cancel(deps, c, pipeline.id);
  });

  app.post("/:pipeline_id/nodes/:id/cancel", async (c) => {
    const { pipeline, node } = await requireNode(deps.reader, c);
    await noBody(c);
    return cancel(deps, c, pipeline.id, node.id);
  });

  app.get("/:pipeline_id/runs", async (c) => {
    const pipeline = await requirePipeline(deps.reader, c);
    const query = RunsQuery.safeParse({ limit: c.req.query("limit") });
    if (!query.success) throw new HttpError(422, zodMessage(query.error));
    const runs = await listRuns(deps.reader, pipeline.id, { limit: query.data.limit });
    return c.json({ runs: runs.map(toSerializedRun) });
  });

  return app;
}
