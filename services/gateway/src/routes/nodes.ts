import { randomUUID } from "node:crypto";
import { Hono } from "hono";
import type { z } from "zod";
import type { NodeType } from "@vp/contracts";
import { createNode, deleteNode, findDependants, listNodes, nodeFilesPrefix, toSerializedNode, updateNodeStructure } from "@vp/db";
import {
  findCycle,
  formatFieldProblems,
  formatProblems,
  lookup,
  nodeFieldProblems,
  nodeLabel,
  nodeName,
  upstreamIds,
  validateStructure,
  type GraphNode,
} from "@vp/flow-graph";
import { limitsOf, type GatewayDeps } from "../deps";
import { deleteFilesOf } from "../storage-files";
import { readGateOf } from "../read-gate";
import { HttpError, notFound } from "../errors";
import { requireNode, requirePipeline } from "../pipeline-access";
import { announceStructure, authorOf, clientOf, conflictOf, etagOf, ifMatchRevision } from "../structure";
import { assetPatchFor, CreateNodeBody, jsonBody, noBody, UpdateNodeBody } from "../validation";
import { requireVariablesFit } from "./variables";
import type { Variable } from "@vp/contracts";

/** The node's own fields as they will be stored (the one check of every write path: add, edit, import). */
function requireFields(node: { type: NodeType; config: unknown; asset: unknown }) {
  const problems = nodeFieldProblems(node);
  if (problems.length) throw new HttpError(422, formatFieldProblems(problems), { problems });
}

/**
 * Structure checks against the rest of the pipeline: slots, counts, existing inputs, media types, cycles.
 * Nodes that take the candidate as an input are checked too (an asset whose media type changes must still
 * be something its downstream slots accept).
 */
async function checkGraph(deps: GatewayDeps, pipelineId: string, candidate: GraphNode) {
  const rows = await readGateOf(deps).run(() => listNodes(deps.reader, pipelineId));
  const nodes = lookup(rows.map((row) => toSerializedNode(row) as GraphNode));
  nodes.set(candidate.id, candidate);
  const problems = validateStructure(candidate, nodes);
  for (const other of nodes.values()) {
    if (other.id === candidate.id || !upstreamIds(other).includes(candidate.id)) continue;
    problems.push(...validateStructure(other, nodes).filter((p) => p.message.includes(nodeName(candidate.id, nodes))));
  }
  if (problems.length) throw new HttpError(422, formatProblems(problems, nodes), { problems });
  const cycle = findCycle(nodes);
  if (cycle) throw new HttpError(422, `inputs would create a cycle: ${cycle.map((id) => nodeLabel(id, nodes)).join(" -> ")}`);
}

type SerializedNode = ReturnType<typeof toSerializedNode>;
type NodeEdit = z.infer<typeof UpdateNodeBody>;

/** A PATCH body as the structure write it makes (JSON merge patch: a config key set to null is removed; every config field is optional). */
function structurePatchOf(node: SerializedNode, body: NodeEdit) {
  const configRemove = body.config ? Object.keys(body.config).filter((key) => body.config![key] === null) : [];
  const configPatch = body.config ? Object.fromEntries(Object.entries(body.config).filter(([, value]) => value !== null)) : undefined;
  const assetPatch = body.asset ? assetPatchFor(node.asset, body.asset) : undefined;
  return { configPatch, configRemove: configRemove.length ? configRemove : undefined, assetPatch };
}

/**
 * An edited node passes the checks of every write path: its own fields and its placeholders and bound asset
 * (against the pipeline's variables) when they change, the graph when its inputs or its asset's media type do.
 */
async function checkEdit(
  deps: GatewayDeps,
  pipeline: { id: string; variables?: Variable[] },
  node: SerializedNode,
  body: NodeEdit,
  patch: ReturnType<typeof structurePatchOf>,
) {
  const pipelineId = pipeline.id;
  const asset = patch.assetPatch ? { ...node.asset, ...patch.assetPatch } : node.asset;
  if (body.config || body.asset) {
    const config = Object.fromEntries(Object.entries(node.config ?? {}).filter(([key]) => !patch.configRemove?.includes(key)));
    requireFields({ type: node.type, config: { ...config, ...patch.configPatch }, asset });
    requireVariablesFit([{ ...node, config: { ...config, ...patch.configPatch }, asset }], pipeline.variables ?? []);
  }
  const assetTypeChanges = body.asset?.type !== undefined && body.asset.type !== (node.asset as { type?: string } | null)?.type;
  if (body.inputs || assetTypeChanges) {
    await checkGraph(deps, pipelineId, { ...(node as GraphNode), inputs: { ...node.inputs, ...body.inputs }, asset });
  }
}

/** A node another node takes as an input, or one that is running, stays (409). */
async function checkDeletable(deps: GatewayDeps, pipelineId: string, node: SerializedNode) {
  const dependants = await findDependants(deps.reader, pipelineId, node.id);
  if (dependants.length) {
    throw new HttpError(409, `Node is an input of ${dependants.join(", ")}; remove it from their inputs first`, { dependants });
  }
  if (node.status === "queued" || node.status === "in_progress") {
    throw new HttpError(409, `Node is ${node.status}; wait for it to finish before deleting it`);
  }
}

export function nodeRoutes(deps: GatewayDeps) {
  const app = new Hono();

  app.get("/", async (c) => {
    const pipeline = await requirePipeline(deps.reader, c);
    return readGateOf(deps).run(async () => c.json({ nodes: (await listNodes(deps.reader, pipeline.id)).map(toSerializedNode) }));
  });

  app.post("/", async (c) => {
    const pipeline = await requirePipeline(deps.reader, c);
    const body = await jsonBody(c, CreateNodeBody);
    requireFields({ type: body.type, config: body.config, asset: body.asset ?? null });
    const id = body.id ?? randomUUID();
    requireVariablesFit([{ id, title: body.title, config: body.config, asset: body.asset ?? null }], pipeline.variables ?? []);
    await checkGraph(deps, pipeline.id, { id, type: body.type, inputs: body.inputs, status: "pending", asset: body.asset ?? null });
    const row = await createNode(
      deps.editor,
      {
        pipelineId: pipeline.id,
        id,
        title: body.title,
        type: body.type,
        inputs: body.inputs,
        config: body.config,
        asset: body.asset ?? null,
        position: body.position ?? null,
        disabled: body.disabled ?? false,
        by: authorOf(c),
      },
      limitsOf(deps),
    );
    deps.logger.info({ pipelineId: pipeline.id, nodeId: id, type: body.type, revision: Number(row.revision) }, "node created");
    announceStructure(deps, { pipelineId: pipeline.id, revision: Number(row.revision), by: authorOf(c), client: clientOf(c), nodes: [{ id, row }] });
    return c.json({ node: toSerializedNode(row) }, 201, { etag: etagOf(row) });
  });

  app.get("/:id", async (c) => {
    const { node } = await requireNode(deps.reader, c);
    return c.json({ node }, 200, { etag: etagOf(node) });
  });

  app.get("/:id/status", async (c) => {
    const { node } = await requireNode(deps.reader, c);
    return c.json({ id: node.id, status: node.status, metadata: node.metadata ?? {}, output: node.output ?? {} });
  });

  app.patch("/:id", async (c) => {
    const { pipeline, node } = await requireNode(deps.reader, c);
    const body = await jsonBody(c, UpdateNodeBody);
    const ifRevision = ifMatchRevision(c);
    const patch = structurePatchOf(node, body);
    await checkEdit(deps, pipeline, node, body, patch);
    const row = await updateNodeStructure(
      deps.editor,
      pipeline.id,
      node.id,
      { title: body.title, inputsPatch: body.inputs, ...patch, position: body.position, disabled: body.disabled },
      limitsOf(deps),
      { by: authorOf(c), ifRevision },
    ).catch(async (error: unknown) => {
      throw await conflictOf(deps.reader, pipeline.id, error);
    });
    if (!row) throw notFound("Node");
    // A patch that changed nothing made no revision: nothing to announce.
    if (Number(row.revision) !== node.revision) {
      announceStructure(deps, { pipelineId: pipeline.id, revision: Number(row.revision), by: authorOf(c), client: clientOf(c), nodes: [{ id: node.id, row }] });
    }
    return c.json({ node: toSerializedNode(row) }, 200, { etag: etagOf(row) });
  });

  app.delete("/:id", async (c) => {
    const { pipeline, node } = await requireNode(deps.reader, c);
    await noBody(c);
    const ifRevision = ifMatchRevision(c);
    await checkDeletable(deps, pipeline.id, node);
    const revision = await deleteNode(deps.editor, pipeline.id, node.id, { by: authorOf(c), ifRevision }).catch(async (error: unknown) => {
      throw await conflictOf(deps.reader, pipeline.id, error);
    });
    if (revision) {
      announceStructure(deps, { pipelineId: pipeline.id, revision, by: authorOf(c), client: clientOf(c), nodes: [{ id: node.id, row: null }] });
      // Its stored files go once the delete has committed (files still referred to by the cache are kept).
      await deleteFilesOf(deps, nodeFilesPrefix(pipeline.id, node.id));
    }
    deps.logger.info({ pipelineId: pipeline.id, nodeId: node.id }, "node deleted");
    return c.body(null, 204);
  });

  return app;
}
