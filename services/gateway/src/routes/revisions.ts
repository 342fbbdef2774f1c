import { Hono } from "hono";
import { z } from "zod";
import { listNodes, listRevisions, nodeFilesPrefix, restoreStructure, structureAt, toSerializedNode } from "@vp/db";
import { limitsOf, type GatewayDeps } from "../deps";
import { HttpError, notFound, zodMessage } from "../errors";
import { requirePipeline } from "../pipeline-access";
import { deleteFilesOf } from "../storage-files";
import { announceStructure, authorOf, clientOf } from "../structure";
import { noBody } from "../validation";

const HistoryQuery = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  before: z.coerce.number().int().min(1).optional(),
});

function revisionParam(value: string | undefined): number {
  const revision = Number(value);
  if (!/^\d{1,15}$/.test(value ?? "") || !Number.isSafeInteger(revision)) throw new HttpError(404, "Revision not found");
  return revision;
}

/**
 * A pipeline's structure history: every structure write is a revision (who, when, what). List them, read the
 * pipeline as it was at one, and restore one (the restore is itself a new revision, so it can be undone the same way).
 */
export function revisionRoutes(deps: GatewayDeps) {
  const app = new Hono();

  app.get("/:pipeline_id/revisions", async (c) => {
    const pipeline = await requirePipeline(deps.reader, c);
    const parsed = HistoryQuery.safeParse(c.req.query());
    if (!parsed.success) throw new HttpError(422, zodMessage(parsed.error));
    const revisions = await listRevisions(deps.reader, pipeline.id, parsed.data);
    return c.json({ current: pipeline.revision ?? 0, revisions });
  });

  app.get("/:pipeline_id/revisions/:revision", async (c) => {
    const pipeline = await requirePipeline(deps.reader, c);
    const revision = revisionParam(c.req.param("revision"));
    const at = await structureAt(deps.reader, pipeline.id, revision);
    if (!at) throw notFound("Revision");
    return c.json({
      revision: at.entry ?? { revision },
      current: at.current,
      pipeline: at.pipeline,
      nodes: [...at.nodes].map(([id, node]) => ({ id, ...node })),
      changes: at.entry?.changes ?? null,
    });
  });

  app.post("/:pipeline_id/revisions/:revision/restore", async (c) => {
    const pipeline = await requirePipeline(deps.reader, c);
    const revision = revisionParam(c.req.param("revision"));
    await noBody(c);
    const at = await structureAt(deps.reader, pipeline.id, revision);
    if (!at) throw notFound("Revision");
    if (revision === at.current) throw new HttpError(409, `Revision ${revision} is the pipeline's current structure; there is nothing to restore`);
    const by = authorOf(c);
    const result = await restoreStructure(deps.editor, pipeline.id, at, limitsOf(deps), { by });
    if (!result) throw notFound("Pipeline");
    deps.logger.info({ pipelineId: pipeline.id, restored: revision, revision: result.revision, by }, "revision restored");
    announceStructure(deps, {
      pipelineId: pipeline.id,
      revision: result.revision,
      by,
      client: clientOf(c),
      pipeline: { title: result.pipeline.title, config: result.pipeline.config, variables: result.pipeline.variables ?? [] },
      nodes: [...result.written.map((row) => ({ id: row.id, row })), ...result.removed.map((id) => ({ id, row: null }))],
    });
    // Removed nodes' stored files go once the restore has committed (files still referred to by the cache are kept).
    for (const id of result.removed) await deleteFilesOf(deps, nodeFilesPrefix(pipeline.id, id));
    const nodes = (await listNodes(deps.reader, pipeline.id)).map(toSerializedNode);
    return c.json({ pipeline: { ...result.pipeline, nodes }, revision: result.revision });
  });

  return app;
}
