import { ID_PATTERN } from "@vp/contracts";
import { getNode, getPipeline, toSerializedNode, type Queryable } from "@vp/db";
import { notFound } from "./errors";
import { pathId } from "./validation";

/** What the lookups read from a request: its path parameters (`pipeline_id`, `id`). */
export interface PathParams {
  req: { param(name: string): string | undefined };
}

/** The pipeline named by `:pipeline_id`, or a 404. */
export async function requirePipeline(db: Queryable, c: PathParams) {
  const pipelineId = pathId(c.req.param("pipeline_id"), "Pipeline");
  const pipeline = await getPipeline(db, pipelineId);
  if (!pipeline) throw notFound("Pipeline");
  return pipeline;
}

/** The pipeline and node named by `:pipeline_id` and `:id`; the 404 says which of the two is missing. */
export async function requireNode(db: Queryable, c: PathParams) {
  const pipeline = await requirePipeline(db, c);
  const nodeId = pathId(c.req.param("id"), "Node");
  const row = await getNode(db, pipeline.id, nodeId);
  if (!row) throw notFound("Node");
  return { pipeline, node: toSerializedNode(row) };
}

/**
 * requireNode in one query on the hot path: a node that exists names an existing pipeline (foreign key), so only a
 * missing node (or a malformed node id) takes requireNode's two reads, which say which of the two is missing.
 */
export async function findNode(db: Queryable, c: PathParams): Promise<{ pipeline: { id: string }; node: ReturnType<typeof toSerializedNode> }> {
  const pipelineId = pathId(c.req.param("pipeline_id"), "Pipeline");
  const nodeId = c.req.param("id");
  const row = nodeId !== undefined && ID_PATTERN.test(nodeId) ? await getNode(db, pipelineId, nodeId) : null;
  if (!row) return requireNode(db, c);
  return { pipeline: { id: pipelineId }, node: toSerializedNode(row) };
}
