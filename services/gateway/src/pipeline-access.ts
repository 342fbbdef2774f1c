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

const API = "/v1/video_production";
const PIPELINES = `${API}/pipelines`;

/** A path segment decoded as Hono decodes route parameters; undecodable text is kept (it names no pipeline). */
function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/**
 * Why a principal limited to `allowed` pipelines (an API key) may not make this request, or null. By path, before any
 * route runs, so every pipeline-scoped route (present or added later: all live under /pipelines/:id) is covered and
 * the answer is the same 403 whether the pipeline exists or not. Such a principal may list pipelines (the list holds
 * only its own) and use its pipelines' routes; it may not create or import a pipeline (it would be outside the
 * limit) nor use any other route (the API-key routes among them).
 */
export function pipelineLimitRefusal(method: string, path: string, allowed: ReadonlySet<string>): string | null {
  const creates =
    "This API key is limited to some pipelines, so it cannot create one (the new pipeline would be outside its limit); use a key without a pipeline limit";
  if (path === PIPELINES) return method === "GET" || method === "HEAD" ? null : creates;
  if (path === `${API}/auth/session` || path === `${API}/auth/me`) return null;
  if (!path.startsWith(`${PIPELINES}/`)) {
    return `This API key is limited to some pipelines: it may only list pipelines and use its own (${method} ${shownPath(path)} is neither)`;
  }
  if (method === "POST" && path === `${PIPELINES}/import`) return creates;
  const id = decodeSegment(path.slice(PIPELINES.length + 1).split("/", 1)[0]!);
  if (allowed.has(id)) return null;
  return `This API key may not use pipeline ${JSON.stringify(id.slice(0, 100))}: it is limited to ${allowed.size} pipeline${allowed.size === 1 ? "" : "s"} (GET ${PIPELINES} lists them)`;
}

const shownPath = (path: string) => (path.length > 200 ? `${path.slice(0, 200)}…` : path);
