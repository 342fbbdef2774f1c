import { randomUUID } from "node:crypto";
import { Hono } from "hono";
import { getPipeline, importPipeline, listNodes, toSerializedNode } from "@vp/db";
import { Title } from "@vp/contracts";
import { describeProblem, toPipelineDocument, validatePipelineDocument } from "@vp/flow-graph";
import { limitsOf, type GatewayDeps } from "../deps";
import { readGateOf } from "../read-gate";
import { HttpError, notFound } from "../errors";
import { authorOf } from "../structure";
import { pathId, readJson } from "../validation";

/** A file name for the download, from the title (letters, digits and dashes only). */
function fileName(title: string): string {
  const slug = title
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 60);
  return `${slug || "pipeline"}.pipeline.json`;
}

const IMPORTED = " (imported)";

/**
 * An import's title: `?title=` when given, else the document's with " (imported)" after it, so the copy
 * is told apart from the pipeline it was exported from (the document's title is cut to make room). A title
 * that already says it is a copy is kept.
 */
function importTitle(given: string | undefined, documentTitle: string): string {
  if (given !== undefined) {
    const parsed = Title.safeParse(given);
    if (!parsed.success) throw new HttpError(400, `title ${parsed.error.issues[0]?.message ?? "is invalid"}`);
    return parsed.data;
  }
  if (/\((copy|imported)\)$/i.test(documentTitle)) return documentTitle;
  return `${documentTitle.slice(0, 200 - IMPORTED.length).trimEnd()}${IMPORTED}`;
}

/**
 * Pipeline as code. GET /pipelines/:id/export answers the pipeline's structure as a versioned document
 * (@vp/contracts PipelineDocument); POST /pipelines/import validates a whole document (every problem,
 * node by node, in one 422) and only then creates the pipeline and all its nodes in one editor transaction,
 * titled "<title> (imported)" unless `?title=` names it.
 */
export function documentRoutes(deps: GatewayDeps) {
  const app = new Hono();

  app.get("/:id/export", async (c) => {
    const id = pathId(c.req.param("id"), "Pipeline");
    const pipeline = await getPipeline(deps.reader, id);
    if (!pipeline) throw notFound("Pipeline");
    return readGateOf(deps).run(async () => {
      const nodes = (await listNodes(deps.reader, id)).map(toSerializedNode);
      c.header("Content-Disposition", `attachment; filename="${fileName(pipeline.title)}"`);
      return c.json(toPipelineDocument(pipeline, nodes));
    });
  });

  app.post("/import", async (c) => {
    const limits = limitsOf(deps);
    const given = c.req.query("title");
    const result = validatePipelineDocument(await readJson(c), { maxNodes: limits.maxNodes });
    if (!result.ok) {
      const count = result.problems.length;
      throw new HttpError(422, `The pipeline document has ${count} problem${count === 1 ? "" : "s"}; nothing was created`, {
        problems: result.problems.map((p) => ({ ...p, text: describeProblem(p) })),
      });
    }
    const { document } = result;
    const { pipeline, nodes } = await importPipeline(
      deps.editor,
      {
        pipeline: { id: randomUUID(), title: importTitle(given, document.title), variables: document.variables ?? [] },
        nodes: document.nodes.map((node) => ({
          id: node.id,
          title: node.title,
          type: node.type,
          inputs: node.inputs ?? {},
          config: node.config ?? {},
          asset: node.asset ?? null,
          position: node.position ?? null,
          disabled: node.disabled === true,
        })),
      },
      limits,
      { by: authorOf(c) },
    );
    deps.logger.info({ pipelineId: pipeline.id, nodes: nodes.length }, "pipeline imported");
    return c.json({ pipeline: { ...pipeline, nodes: nodes.map(toSerializedNode) } }, 201);
  });

  return app;
}
