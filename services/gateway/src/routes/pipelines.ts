import { randomUUID } from "node:crypto";
import { Hono } from "hono";
import { NODE_STATUSES } from "@vp/contracts";
import {
  countNodesByStatus,
  createPipeline,
  deletePipeline,
  getPipeline,
  listNodes,
  listPipelines,
  pipelineFilesPrefix,
  toSerializedNode,
  updatePipeline,
} from "@vp/db";
import type { GatewayDeps } from "../deps";
import { sharedJson } from "../read-gate";
import { deleteFilesOf } from "../storage-files";
import { notFound } from "../errors";
import { announceStructure, authorOf, clientOf } from "../structure";
import { CreatePipelineBody, jsonBody, noBody, PageQuery, pathId, UpdatePipelineBody } from "../validation";
import { HttpError, zodMessage } from "../errors";

export function pipelineRoutes(deps: GatewayDeps) {
  const app = new Hono();

  app.get("/", async (c) => {
    const query = PageQuery.safeParse({ page: c.req.query("page"), per: c.req.query("per") });
    if (!query.success) throw new HttpError(422, zodMessage(query.error));
    const { page, per } = query.data;
    // The pipelines batches made for their rows only with ?batch_rows=true (GET /batches/:id names them).
    const batchRows = c.req.query("batch_rows");
    if (batchRows !== undefined && batchRows !== "true" && batchRows !== "false") throw new HttpError(422, 'batch_rows: must be "true" or "false"');
    // A caller limited to some pipelines (an API key) sees only those.
    const { pipelines, totalCount } = await listPipelines(deps.reader, { page, per, ids: c.get("principal")?.pipelines, batchRows: batchRows === "true" });
    // Live node counts for the editor's list (metadata.progress only moves when a status changes).
    const counts = await countNodesByStatus(
      deps.reader,
      pipelines.map((p) => p.id),
    );
    return c.json({
      pipelines: pipelines.map((p) => {
        const byStatus = counts.get(p.id) ?? {};
        const nodeCounts = Object.fromEntries(NODE_STATUSES.map((status) => [status, byStatus[status] ?? 0]));
        return { ...p, node_counts: { total: Object.values(byStatus).reduce((a, b) => a + b, 0), ...nodeCounts } };
      }),
      meta: { current_page: page, total_pages: Math.ceil(totalCount / per), total_count: totalCount },
    });
  });

  app.post("/", async (c) => {
    const body = await jsonBody(c, CreatePipelineBody);
    const pipeline = await createPipeline(deps.editor, { id: body.id ?? randomUUID(), title: body.title, config: body.config ?? {} });
    deps.logger.info({ pipelineId: pipeline.id }, "pipeline created");
    return c.json({ pipeline }, 201);
  });

  app.get("/:id", async (c) => {
    const id = pathId(c.req.param("id"), "Pipeline");
    const body = await sharedJson(deps, `pipeline:${id}`, async () => {
      const pipeline = await getPipeline(deps.reader, id);
      if (!pipeline) throw notFound("Pipeline");
      const nodes = (await listNodes(deps.reader, id)).map(toSerializedNode);
      return { pipeline: { ...pipeline, nodes } };
    });
    return c.body(body, 200, { "content-type": "application/json" });
  });

  app.patch("/:id", async (c) => {
    const id = pathId(c.req.param("id"), "Pipeline");
    const body = await jsonBody(c, UpdatePipelineBody);
    const pipeline = await updatePipeline(deps.editor, id, { title: body.title, configPatch: body.config }, { by: authorOf(c) });
    if (!pipeline) throw notFound("Pipeline");
    announceStructure(deps, {
      pipelineId: id,
      revision: pipeline.revision!,
      by: authorOf(c),
      client: clientOf(c),
      pipeline: { title: pipeline.title, config: pipeline.config },
    });
    return c.json({ pipeline });
  });

  app.delete("/:id", async (c) => {
    const id = pathId(c.req.param("id"), "Pipeline");
    await noBody(c);
    if (!(await deletePipeline(deps.editor, id))) throw notFound("Pipeline");
    deps.logger.info({ pipelineId: id }, "pipeline deleted");
    // Its stored files go once the delete has committed (files still referred to by the cache are kept).
    await deleteFilesOf(deps, pipelineFilesPrefix(id));
    return c.body(null, 204);
  });

  return app;
}
