import { randomUUID } from "node:crypto";
import { Hono } from "hono";
import { z } from "zod";
import { type ExecuteCommand, ExecuteVerdict, HEADERS } from "@vp/contracts";
import { publish, waitForReply } from "@vp/bus";
import { getNodes, getPipelineVariables, toSerializedNode } from "@vp/db";
import { variablesUsedBy } from "@vp/flow-graph/variables";
import { executionVerdict, lookup, type GraphNode } from "@vp/flow-graph";
import type { GatewayDeps } from "../deps";
import { HttpError } from "../errors";
import { findNode } from "../pipeline-access";
import { startRun } from "../start-run";
import { requireFilledByDefaults } from "./variables";
import { optionalBody } from "../validation";

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
    const ready = executionVerdict(node as GraphNode, nodes);
    if (!ready.ok) throw new HttpError(422, ready.reason, ready.problems.length ? { problems: ready.problems } : undefined);
    // A node with placeholders runs with the variables' defaults: one without a default is refused before anything runs.
    if (variablesUsedBy(node).length) requireFilledByDefaults([node], (await getPipelineVariables(deps.reader, pipeline.id)) ?? []);

    const jobId = randomUUID();
    const commandId = randomUUID();
    const command: ExecuteCommand = {
      v: 1,
      kind: "execute",
      commandId,
      jobId,
      pipelineId: pipeline.id,
      nodeId: node.id,
      requestedAt: new Date().toISOString(),
    };
    const ids = { pipelineId: pipeline.id, nodeId: node.id, jobId, commandId };
    const verdict = await waitForReply(deps.bus, ExecuteVerdict, deps.executeVerdictTimeoutMs, (inbox) =>
      publish(deps.bus, deps.topology.messages.execute, command, {
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
