import type { GraphProblem, Variable } from "@vp/contracts";
import { getPipelineVariables, type Queryable } from "@vp/db";
import { defaultValues, placeholdersIn, resolveNode, textFieldsOf, unfilledProblems, type VariableNode } from "@vp/flow-graph/variables";

/**
 * Pipeline variables in a plain run: the scheduler keys and dispatches every node with its `{{name}}` placeholders
 * filled from the variables' defaults, and the executor fills the node it claimed the same way before its work reads
 * the text or config, so the key and the job see the same text and a changed default is a changed key.
 */

const hasPlaceholders = (node: VariableNode) => textFieldsOf(node).some((field) => placeholdersIn(field.text).length > 0);

/** The rows as a plain run keys and dispatches them, and the placeholders of some of them no default fills. */
export interface FilledByDefaults<N> {
  rows: N[];
  /** Placeholders of `nodes` (some of the rows, as stored) that no default fills, one problem per node and variable. */
  unfilled(nodes: readonly VariableNode[]): GraphProblem[];
}

/** Fills the rows' placeholders from the pipeline's variable defaults; the variables are read (once) only when a row has a placeholder. */
export async function fillFromDefaults<N extends VariableNode>(db: Queryable, pipelineId: string, rows: N[]): Promise<FilledByDefaults<N>> {
  const variables: Variable[] = rows.some(hasPlaceholders) ? ((await getPipelineVariables(db, pipelineId)) ?? []) : [];
  const values = defaultValues(variables);
  return {
    rows: variables.length ? rows.map((row) => resolveNode(row, values)) : rows,
    unfilled: (nodes) => unfilledProblems(nodes, variables, {}),
  };
}

/** The rows as a plain run keys and dispatches them: placeholders filled from the variables' defaults. */
export async function withVariableDefaults<N extends VariableNode>(db: Queryable, pipelineId: string, rows: N[]): Promise<N[]> {
  return (await fillFromDefaults(db, pipelineId, rows)).rows;
}
