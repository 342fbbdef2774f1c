"use client";

import { useEffect, useMemo, useState } from "react";
import { MAX_VARIABLES, VARIABLE_NAME_PATTERN, VARIABLE_TYPES, type Variable, type VariableType } from "@vp/contracts";
import { variablesUsedBy } from "@vp/flow-graph/variables";
import { ApiError, errorMessage, type Api } from "@/lib/api";
import type { EditorNode } from "@/lib/graph-state";

/** A declaration as typed: the default as text until saved (a number variable's is parsed then). */
interface Draft {
  key: number;
  name: string;
  type: VariableType;
  default: string;
  description: string;
}

/** What a refused save listed: a declaration's path (`variables.1.name`) or a node whose placeholders would not fit. */
type SaveProblem = { path: string; message: string } | { nodeId: string; slot?: string; message: string };

const TYPE_LABEL: Record<VariableType, string> = { text: "Text", number: "Number", video: "Video", audio: "Audio", image: "Image" };
const isMedia = (type: VariableType) => type !== "text" && type !== "number";

let nextKey = 1;
const draftOf = (v: Variable): Draft => ({
  key: nextKey++,
  name: v.name,
  type: v.type,
  default: v.default === undefined ? "" : String(v.default),
  description: v.description ?? "",
});

/** The declarations to send, or the first reason they cannot be (checked again by the gateway, which lists every one). */
function declarationsOf(drafts: Draft[]): { variables: Variable[] } | { error: string } {
  const variables: Variable[] = [];
  for (const d of drafts) {
    const name = d.name.trim();
    if (!VARIABLE_NAME_PATTERN.test(name)) return { error: `"${name}": a name starts with a letter or _, then letters, digits or _ (at most 40)` };
    const v: Variable = { name, type: d.type };
    if (!isMedia(d.type) && d.default !== "") {
      if (d.type === "number") {
        const n = Number(d.default);
        if (!Number.isFinite(n)) return { error: `"${name}": the default of a number variable must be a number` };
        v.default = n;
      } else v.default = d.default;
    }
    if (d.description.trim()) v.description = d.description.trim();
    variables.push(v);
  }
  return { variables };
}

interface VariablesPanelProps {
  api: Api;
  pipelineId: string;
  variables: readonly Variable[];
  nodes: ReadonlyMap<string, EditorNode>;
  onSaved(variables: Variable[]): void;
  onClose(): void;
  select(id: string | null): void;
  toast(message: string, kind?: "error" | "info"): void;
  /** Why editing is off (no editor role), or null. */
  readOnly: string | null;
}

/**
 * The pipeline's variables: what changes from one video to the next. Each has a name (used as `{{name}}` in text
 * assets and text settings, or bound to a media asset), a type, a default for plain runs and a description; a batch
 * gives each row its own values. Edited here and saved together (one version); a save the gateway refuses lists
 * every problem, the nodes that would no longer fit by title (a click selects one).
 */
export function VariablesPanel({ api, pipelineId, variables, nodes, onSaved, onClose, select, toast, readOnly }: VariablesPanelProps) {
  const saved = useMemo(() => variables.map(draftOf), [variables]);
  const [drafts, setDrafts] = useState<Draft[]>(saved);
  const [dirty, setDirty] = useState(false);
  const [saving, setSaving] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [problems, setProblems] = useState<SaveProblem[]>([]);
  // Someone else's save (or a restore) shows at once unless this page has unsaved edits.
  useEffect(() => {
    if (!dirty) setDrafts(saved);
  }, [saved, dirty]);

  const usage = useMemo(() => {
    const by = new Map<string, string[]>();
    for (const node of nodes.values()) for (const name of variablesUsedBy(node)) by.set(name, [...(by.get(name) ?? []), node.title]);
    return by;
  }, [nodes]);

  const change = (key: number, patch: Partial<Draft>) => {
    setDrafts((list) => list.map((d) => (d.key === key ? { ...d, ...patch, ...(patch.type && isMedia(patch.type) ? { default: "" } : {}) } : d)));
    setDirty(true);
  };
  const add = () => {
    const taken = new Set(drafts.map((d) => d.name));
    let n = drafts.length + 1;
    while (taken.has(`variable${n}`)) n++;
    setDrafts([...drafts, { key: nextKey++, name: `variable${n}`, type: "text", default: "", description: "" }]);
    setDirty(true);
  };
  const remove = (key: number) => {
    setDrafts(drafts.filter((d) => d.key !== key));
    setDirty(true);
  };
  const save = async () => {
    const checked = declarationsOf(drafts);
    setProblems([]);
    if ("error" in checked) return setError(checked.error);
    setError(null);
    setSaving(true);
    try {
      const answer = await api.putVariables(pipelineId, checked.variables);
      setDirty(false);
      onSaved(answer.variables);
      toast("Variables saved", "info");
    } catch (e) {
      const listed = e instanceof ApiError && e.status === 422 ? ((e.body as { problems?: SaveProblem[] } | undefined)?.problems ?? []) : [];
      setProblems(listed);
      setError(listed.length ? `Not saved: ${listed.length} problem${listed.length === 1 ? "" : "s"}` : `Not saved: ${errorMessage(e)}`);
    } finally {
      setSaving(false);
    }
  };

  return (
    <aside className="run-history variables-panel" aria-label="Variables" data-testid="variables-panel">
      <div className="run-history-head">
        <h3>Variables</h3>
        <button type="button" className="icon-button" aria-label="Close variables" onClick={onClose}>
          ×
        </button>
      </div>
      <p className="muted small">
        What changes from one video to the next: write <code>{"{{name}}"}</code> in a text asset or a text setting, or bind a media asset to a media variable. A
        batch gives each row its own values; a plain run uses the defaults.
      </p>
      <fieldset className="panel-fieldset" disabled={readOnly !== null} title={readOnly ?? undefined}>
        {drafts.length === 0 && <p className="muted small">No variables yet.</p>}
        <ol className="variable-list">
          {drafts.map((d) => (
            <li key={d.key} className="variable-item" data-testid="variable-row" data-name={d.name}>
              <div className="variable-line">
                <input
                  className="mono"
                  value={d.name}
                  aria-label="Variable name"
                  onChange={(e) => change(d.key, { name: e.target.value })}
                  data-testid="variable-name"
                  spellCheck={false}
                />
                <select
                  value={d.type}
                  aria-label="Variable type"
                  onChange={(e) => change(d.key, { type: e.target.value as VariableType })}
                  data-testid="variable-type"
                >
                  {VARIABLE_TYPES.map((t) => (
                    <option key={t} value={t}>
                      {TYPE_LABEL[t]}
                    </option>
                  ))}
                </select>
                <button type="button" className="icon-button" aria-label={`Delete ${d.name}`} onClick={() => remove(d.key)} data-testid="variable-delete">
                  ×
                </button>
              </div>
              {isMedia(d.type) ? (
                <p className="muted small">Default: the bound asset&apos;s own file.</p>
              ) : (
                <input
                  value={d.default}
                  inputMode={d.type === "number" ? "decimal" : undefined}
                  placeholder="Default (for plain runs; empty: each run must give one)"
                  aria-label={`Default of ${d.name}`}
                  onChange={(e) => change(d.key, { default: e.target.value })}
                  data-testid="variable-default"
                />
              )}
              <input
                value={d.description}
                placeholder="Description"
                aria-label={`Description of ${d.name}`}
                onChange={(e) => change(d.key, { description: e.target.value })}
                data-testid="variable-description"
              />
              <span className="muted small" data-testid="variable-usage">
                {usage.get(d.name.trim())?.length ? `Used by ${usage.get(d.name.trim())!.join(", ")}` : "Not used yet"}
              </span>
            </li>
          ))}
        </ol>
        {error && (
          <div className="node-error full" role="alert" data-testid="variables-error">
            {error}
            {problems.length > 0 && (
              <ul className="problem-list">
                {problems.map((p, i) => (
                  <li key={i}>
                    {"nodeId" in p ? (
                      <button type="button" className="link-button" onClick={() => select(p.nodeId)} data-testid="variables-problem-node">
                        {nodes.get(p.nodeId)?.title ?? p.nodeId}
                      </button>
                    ) : (
                      <span className="mono">{p.path}</span>
                    )}
                    : {p.message}
                  </li>
                ))}
              </ul>
            )}
          </div>
        )}
        <div className="row">
          <button type="button" className="button secondary small" onClick={add} disabled={drafts.length >= MAX_VARIABLES} data-testid="variable-add">
            Add variable
          </button>
          <button type="button" className="button small" onClick={() => void save()} disabled={!dirty || saving} data-testid="variables-save">
            {saving ? "Saving…" : dirty ? "Save variables" : "Saved"}
          </button>
          {dirty && (
            <button
              type="button"
              className="link-button"
              onClick={() => {
                setDrafts(saved);
                setDirty(false);
                setError(null);
                setProblems([]);
              }}
            >
              Discard changes
            </button>
          )}
        </div>
      </fieldset>
    </aside>
  );
}
