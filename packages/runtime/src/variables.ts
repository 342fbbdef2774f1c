import type { GraphProblem, Variable } from "@vp/contracts";
import { getPipelineVariables, type Queryable } from "@vp/db";
import { defaultValues, placeholdersIn, resolveNode, textFieldsOf, unfilledProblems, type VariableNode } from "@vp/flow-graph/variables";

/**
 * Pipeline variables in a plain run: the scheduler keys and dispatches every node with its `{{name}}` placeholders
 * filled from the variables' defaults, and the executor fills the node it claimed the same way before its work reads
 * the text or config, so the key and the job see the same text and a changed default is a changed key.
 */

const hasPlaceholders = (node: VariableNode) => textFieldsOf(node).some((field) => placeholdersIn(field.text).length > 0);

/** The pipeline's variables, read only when one of `rows` has a placeholder (most pipelines have none). */
async function variablesFor(db: Queryable, pipelineId: string, rows: readonly VariableNode[]): Promise<Variable[]> {
  if (!rows.some(hasPlaceholders)) return [];
  return (await getPipelineVariables(db, pipelineId)) ?? [];
}

/** The rows as a plain run keys and dispatches them: placeholders filled from the variables' defaults. */
export async function withVariableDefaults<N extends VariableNode>(db: Queryable, pipelineId: string, rows: N[]): Promise<N[]> {
  const variables = await variablesFor(db, pipelineId, rows);
  if (!variables.length) return rows;
  const values = defaultValues(variables);
  return rows.map((row) => resolveNode(row, values));
}

/** Placeholders of `rows` that no default fills (one problem per node and variable): their run is refused before anything runs. */
export async function unfilledByDefaults(db: Queryable, pipelineId: string, rows: readonly VariableNode[]): Promise<GraphProblem[]> {
  return unfilledProblems(rows, await variablesFor(db, pipelineId, rows), {});
}
