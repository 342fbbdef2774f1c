"use client";

import { useContext } from "react";
import type { Variable } from "@vp/contracts";
import { placeholdersIn } from "@vp/flow-graph/variables";
import { EditorContext } from "./context";

/** Why a placeholder cannot be filled, or null when it names a text or number variable of the pipeline. */
export function placeholderProblem(name: string, variables: readonly Variable[]): string | null {
  const variable = variables.find((v) => v.name === name);
  if (!variable) return `"${name}" is not a variable of this pipeline: declare it in Variables`;
  if (variable.type !== "text" && variable.type !== "number") return `"${name}" is a ${variable.type} variable: only text and number variables go into text`;
  return null;
}

/**
 * The `{{name}}` placeholders of a text field, each as a chip under it: a known variable in the accent colour (its
 * default on hover), an unknown one (or a media variable) marked with the reason. Nothing when the text has none.
 */
export function PlaceholderChips({ text, testId }: { text: string; testId?: string }) {
  const editor = useContext(EditorContext);
  const names = placeholdersIn(text);
  if (!editor || names.length === 0) return null;
  return (
    <div className="placeholder-chips" role="group" data-testid={testId} aria-label="Variables used here">
      {names.map((name) => {
        const problem = placeholderProblem(name, editor.variables);
        const variable = editor.variables.find((v) => v.name === name);
        const hint = problem ?? `${variable?.type} variable${variable?.default !== undefined ? `, default: ${String(variable.default)}` : ", no default"}`;
        return (
          <span
            key={name}
            className={`placeholder-chip${problem ? " unknown" : ""}`}
            title={hint}
            data-testid="placeholder-chip"
            data-name={name}
            data-known={problem ? "false" : "true"}
          >
            {`{{${name}}}`}
            {problem && <span className="placeholder-flag"> {variable ? "not text" : "unknown"}</span>}
          </span>
        );
      })}
    </div>
  );
}
