import { randomUUID } from "node:crypto";
import { Hono } from "hono";
import { ExecuteCommand, ExecuteVerdict, HEADERS, ID_PATTERN } from "@vp/contracts";
import { publish, waitForReply } from "@vp/bus";
import { getNode, getNodes, toSerializedNode, type Queryable } from "@vp/db";
import { formatProblems, lookup, notReadyReason, readyToExecute, validateForExecution, type GraphNode } from "@vp/flow-graph";
import type { GatewayDeps } from "../deps";
import { HttpError } from "../errors";
import { requireNode } from "./nodes";
import { startRun } from "./runs";
import { optionalBody, pathId } from "../validation";
import { z } from "zod";

/** Optional body of a node execute: `{ "upstream": true }` runs the node and whatever it needs first. */
const ExecuteBody = z.strictObject({ upstream: z.boolean().optional(), force: z.boolean().optional() });

/**
 * POST .../nodes/:id/execute. The gateway checks readiness from its read-only view (a fast, clear 422),
 * stores the command in JetStream (only then is anything accepted) and waits briefly for the scheduler's
 * verdict: 200 { status: "queued", job_id } once the node is claimed and its job dispatched, 422 when the
 * scheduler refuses (someone else claimed it first), 202 when the verdict is late (stored, will run).
 */
export function executeRoutes(deps: GatewayDeps) {
  const app = new Hono();

  app.post("/:id/execute", async (c) => {
    const { pipeline, node } = await findNode(deps.reader, c);
    const body = await optionalBody(c, ExecuteBody);
    if (body.upstream) return startRun(deps, c, pipeline.id, node.id, undefined, body.force ?? false);
    if (body.force) throw new HttpError(422, 'force applies to runs: send { "upstream": true, "force": true } (a single execute never uses the cache)');
    const upstream = Object.values(node.inputs).flat();
    const inputs = upstream.length ? (await getNodes(deps.reader, pipeline.id, [...new Set(upstream)])).map(toSerializedNode) : [];
    const nodes = lookup([node, ...inputs] as GraphNode[]);
    if (!readyToExecute(node as GraphNode, nodes)) throw new HttpError(422, notReadyReason(node as GraphNode, nodes));
    const problems = validateForExecution(node as GraphNode, nodes);
    if (problems.length) throw new HttpError(422, formatProblems(problems), { problems });

    const jobId = randomUUID();
    const commandId = randomUUID();
    const command: ExecuteCommand = {
      v: 1,
      commandId,
      jobId,
      pipelineId: pipeline.id,
      nodeId: node.id,
      requestedAt: new Date().toISOString(),
    };
    const ids = { pipelineId: pipeline.id, nodeId: node.id, jobId, commandId };
    const verdict = await waitForReply(deps.bus, ExecuteVerdict, deps.executeVerdictTimeoutMs, (inbox) =>
      publish(deps.bus, deps.topology.subjects.execute, ExecuteCommand, command, {
        msgId: commandId,
        headers: { [HEADERS.replyTo]: inbox },
      }),
    );
    if (verdict === null) {
      deps.logger.warn(ids, "execute accepted; scheduler verdict not received in time");
      return c.json({ status: "accepted", job_id: jobId, command_id: commandId }, 202);
    }
    if (!verdict.ok) {
      deps.logger.info({ ...ids, reason: verdict.reason }, "execute refused by scheduler");
      return c.json({ error: verdict.reason }, 422);
    }
    deps.logger.info(ids, "execute queued");
    return c.json({ status: "queued", job_id: verdict.jobId });
  });

  return app;
}

/**
 * requireNode in one query on the hot path: a node that exists names an existing pipeline (foreign key), so only a
 * missing node (or a malformed node id) takes requireNode's two reads, which say which of the two is missing.
 */
async function findNode(db: Queryable, c: Parameters<typeof requireNode>[1]): Promise<{ pipeline: { id: string }; node: ReturnType<typeof toSerializedNode> }> {
  const pipelineId = pathId(c.req.param("pipeline_id"), "Pipeline");
  const nodeId = c.req.param("id");
  const row = nodeId !== undefined && ID_PATTERN.test(nodeId) ? await getNode(db, pipelineId, nodeId) : null;
  if (!row) return requireNode(db, c);
  return { pipeline: { id: pipelineId }, node: toSerializedNode(row) };
}
