import { Hono } from "hono";
import { Variables, type Variable } from "@vp/contracts";
import { listNodes, updatePipelineVariables } from "@vp/db";
import { formatProblems, lookup, type GraphNode, type Problem } from "@vp/flow-graph";
import { defaultValues, resolveNode, unfilledProblems, variableProblems, type VariableNode } from "@vp/flow-graph/variables";
import type { GatewayDeps } from "../deps";
import { HttpError, notFound } from "../errors";
import { requirePipeline } from "../pipeline-access";
import { readGateOf } from "../read-gate";
import { announceStructure, authorOf, clientOf } from "../structure";
import { readJson } from "../validation";

/** A node as the variable checks read it, with the title that names it in messages. */
type NamedNode = VariableNode & { title?: string };

/** 422 with every problem, node by node, in the style of graph problems (`{ error, problems: [{ nodeId, slot, message }] }`). */
function problemsError(problems: Problem[], nodes: Iterable<NamedNode>): HttpError {
  return new HttpError(422, formatProblems(problems, lookup([...nodes] as GraphNode[])), { problems });
}

/** Refuses (422) nodes whose placeholders or bound assets do not fit the declared variables: the check of every structure write path. */
export function requireVariablesFit(nodes: readonly NamedNode[], variables: readonly Variable[]): void {
  const problems = variableProblems(nodes, variables);
  if (problems.length) throw problemsError(problems, nodes);
}

/**
 * Refuses (422, before anything runs) a run whose nodes use a text or number variable that has no default: a plain
 * run fills placeholders from the defaults only.
 */
export function requireFilledByDefaults(nodes: readonly NamedNode[], variables: readonly Variable[], context: readonly NamedNode[] = nodes): void {
  const problems = unfilledProblems(nodes, variables, {});
  if (!problems.length) return;
  const names = [...new Set(problems.map((p) => /\{\{(\w+)\}\}/.exec(p.message)?.[1]).filter(Boolean))];
  throw new HttpError(
    422,
    `Give ${names.map((n) => `"${n}"`).join(", ")} a default before running: ${formatProblems(problems, lookup([...context] as GraphNode[]))}`,
    { problems },
  );
}

/** The nodes with their placeholders filled from the variables' defaults: what a plain run keys and executes. */
export function filledByDefaults<N extends VariableNode>(nodes: readonly N[], variables: readonly Variable[]): N[] {
  if (!variables.length) return [...nodes];
  const values = defaultValues(variables);
  return nodes.map((node) => resolveNode(node, values));
}

/**
 * The declarations of a PUT body: `{ variables: [...] }` checked against the contracts' schema, every issue a
 * problem with its path (`variables.1.default`); 422 listing them all.
 */
async function declarationsOf(c: Parameters<typeof readJson>[0]): Promise<Variable[]> {
  const body = await readJson(c);
  if (!body || typeof body !== "object" || Array.isArray(body) || !("variables" in body)) {
    throw new HttpError(422, "The body must be { variables: [{ name, type, default?, description? }] }");
  }
  const extra = Object.keys(body).filter((key) => key !== "variables");
  if (extra.length) throw new HttpError(422, `Unknown field${extra.length === 1 ? "" : "s"}: ${extra.join(", ")}`);
  const parsed = Variables.safeParse((body as { variables: unknown }).variables);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => ({ path: ["variables", ...issue.path].map(String).join("."), message: issue.message }));
  throw new HttpError(422, problems.map((p) => `${p.path}: ${p.message}`).join("; "), { problems });
}

/**
 * GET /pipelines/:pipeline_id/variables: `{ variables }`. PUT with `{ variables }` (editor) replaces the
 * declarations as one structure revision, after checking them and every node's placeholders and bound assets
 * against them (422 listing every problem: removing a variable still in use names each place that uses it).
 */
export function variableRoutes(deps: GatewayDeps) {
  const app = new Hono();

  app.get("/:pipeline_id/variables", async (c) => {
    const pipeline = await requirePipeline(deps.reader, c);
    return c.json({ variables: pipeline.variables ?? [] });
  });

  app.put("/:pipeline_id/variables", async (c) => {
    const pipeline = await requirePipeline(deps.reader, c);
    const variables = await declarationsOf(c);
    const nodes = await readGateOf(deps).run(() => listNodes(deps.reader, pipeline.id));
    requireVariablesFit(nodes, variables);
    const updated = await updatePipelineVariables(deps.editor, pipeline.id, variables, { by: authorOf(c) });
    if (!updated) throw notFound("Pipeline");
    if (updated.revision !== pipeline.revision) {
      deps.logger.info({ pipelineId: pipeline.id, revision: updated.revision, variables: variables.length }, "pipeline variables changed");
      announceStructure(deps, {
        pipelineId: pipeline.id,
        revision: updated.revision!,
        by: authorOf(c),
        client: clientOf(c),
        pipeline: { title: updated.title, config: updated.config, variables: updated.variables ?? [] },
      });
    }
    return c.json({ variables: updated.variables ?? [] });
  });

  return app;
}
