"use client";

import { useEffect, useMemo, useRef, useState } from "react";
import CodeMirror from "@uiw/react-codemirror";
import { javascript } from "@codemirror/lang-javascript";
import { python } from "@codemirror/lang-python";
import type { NodeType } from "@vp/contracts";
import { configFields, configPatch, evaluateForm, toRaw, type ConfigField } from "@/lib/schema-form";
import type { EditorNode } from "@/lib/graph-state";
import { fieldLabel } from "@/lib/node-types";
import { idSuggestions, isAiType, PROVIDER_LABEL, providersOf } from "@/lib/ai";
import { useEditor } from "./context";
import { OverlaysEditor } from "./overlays-editor";

const SAVE_DELAY_MS = 450;

/** Languages the code animation's editor highlights (config.language is free text up to 40 chars). */
const LANGUAGES = ["javascript", "typescript", "jsx", "tsx", "python", "text"] as const;

function codeExtensions(language: string) {
  switch (language) {
    case "python":
      return [python()];
    case "typescript":
      return [javascript({ typescript: true })];
    case "tsx":
      return [javascript({ typescript: true, jsx: true })];
    case "jsx":
      return [javascript({ jsx: true })];
    case "javascript":
      return [javascript()];
    default:
      return [];
  }
}

type SaveState = "idle" | "pending" | "saving" | "saved" | "invalid" | "failed";

/**
 * The node's config as a form generated from the contracts' config schema. Each change is validated
 * with that schema as the producer types; a valid config is saved (debounced) as a merge patch, an
 * invalid one shows the reason under its field and is not sent.
 */
export function ConfigForm({ node }: { node: EditorNode }) {
  const { updateNode } = useEditor();
  const fields = orderFields(node.type, configFields(node.type));
  const stored = node.config ?? {};
  const [raw, setRaw] = useState<Record<string, string>>(() => rawOf(fields, stored));
  const [touched, setTouched] = useState(false);
  const [save, setSave] = useState<SaveState>("idle");
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const storedRef = useRef(stored);
  storedRef.current = stored;

  // Another writer (or our own save) changed the stored config: show it unless the producer is editing.
  const storedJson = JSON.stringify(stored);
  useEffect(() => {
    if (!touched) setRaw(rawOf(fields, storedRef.current));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [storedJson]);

  const result = useMemo(() => evaluateForm(node.type, stored, raw), [node.type, stored, raw]);
  const valid = Object.keys(result.errors).length === 0;

  useEffect(() => () => clearTimeout(timer.current), []);

  function change(key: string, value: string) {
    const nextRaw = { ...raw, [key]: value };
    setRaw(nextRaw);
    setTouched(true);
    clearTimeout(timer.current);
    const evaluated = evaluateForm(node.type, storedRef.current, nextRaw);
    if (Object.keys(evaluated.errors).length) {
      setSave("invalid");
      return;
    }
    setSave("pending");
    timer.current = setTimeout(async () => {
      const patch = configPatch(storedRef.current, evaluated.config);
      if (!patch) {
        setSave("saved");
        setTouched(false);
        return;
      }
      setSave("saving");
      const ok = await updateNode(node.id, { config: patch });
      setSave(ok ? "saved" : "failed");
      if (ok) setTouched(false);
    }, SAVE_DELAY_MS);
  }

  if (fields.length === 0) return <p className="muted small">This node type has no settings.</p>;

  return (
    <div className="config-form" data-testid="config-form">
      {fields.map((field) => (
        <FieldInput
          key={field.key}
          type={node.type}
          field={field}
          value={raw[field.key] ?? ""}
          error={result.errors[field.key]}
          onChange={(v) => change(field.key, v)}
          raw={raw}
          overlayCount={node.inputs?.overlays?.length ?? 0}
        />
      ))}
      {result.errors[""] && <p className="field-error">{result.errors[""]}</p>}
      <p className={`save-state ${save}`} data-testid="config-save-state" aria-live="polite">
        {save === "pending" || save === "saving"
          ? "Saving…"
          : save === "saved"
            ? "Saved"
            : save === "invalid" || !valid
              ? "Not saved: fix the field marked in red"
              : save === "failed"
                ? "Not saved: the gateway refused the change"
                : ""}
      </p>
    </div>
  );
}

/** The language picker goes above the code it highlights; everything else keeps the schema's order. */
function orderFields(type: NodeType, fields: ConfigField[]): ConfigField[] {
  if (type !== "render-code") return fields;
  const language = fields.find((f) => f.key === "language");
  const rest = fields.filter((f) => f.key !== "language");
  const at = rest.findIndex((f) => f.key === "code");
  return language && at >= 0 ? [...rest.slice(0, at), language, ...rest.slice(at)] : fields;
}

function rawOf(fields: ConfigField[], stored: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(fields.map((f) => [f.key, toRaw(f, stored[f.key])]));
}

function FieldInput({
  type,
  field,
  value,
  error,
  onChange,
  raw,
  overlayCount,
}: {
  overlayCount?: number;
  type: NodeType;
  field: ConfigField;
  value: string;
  error?: string;
  onChange: (value: string) => void;
  raw: Record<string, string>;
}) {
  const id = `config-${field.key}`;
  const describedBy = error ? `${id}-error` : undefined;
  let control;
  if (type === "render-code" && field.key === "code") {
    control = (
      <div className="code-editor" data-testid="code-editor">
        <CodeMirror
          value={value}
          height="180px"
          theme="light"
          extensions={codeExtensions(raw.language || "javascript")}
          onChange={onChange}
          basicSetup={{ lineNumbers: true, foldGutter: false, highlightActiveLine: true }}
          aria-label="Code"
        />
      </div>
    );
  } else if (type === "render-code" && field.key === "language") {
    const options = LANGUAGES.includes(value as (typeof LANGUAGES)[number]) || value === "" ? LANGUAGES : [...LANGUAGES, value];
    control = (
      <select id={id} value={value} onChange={(e) => onChange(e.target.value)} data-testid={`field-${field.key}`}>
        <option value="">(default: javascript)</option>
        {options.map((o) => (
          <option key={o} value={o}>
            {o}
          </option>
        ))}
      </select>
    );
  } else if (isAiType(type) && field.key === "provider") {
    // Local first: the executor's default when the node names none and no API key is configured.
    control = (
      <select
        id={id}
        value={value}
        onChange={(e) => onChange(e.target.value)}
        aria-invalid={!!error}
        aria-describedby={describedBy}
        data-testid={`field-${field.key}`}
      >
        <option value="">(default: local unless an API key is set)</option>
        {providersOf(type).map((o) => (
          <option key={o} value={o}>
            {PROVIDER_LABEL[o] ?? o}
          </option>
        ))}
      </select>
    );
  } else if (type === "compose-video" && field.key === "overlays") {
    control = <OverlaysEditor value={value} onChange={onChange} overlayCount={overlayCount ?? 0} error={error} />;
  } else if (field.kind === "enum" || field.kind === "boolean") {
    const options = field.kind === "boolean" ? ["true", "false"] : (field.options ?? []);
    control = (
      <select
        id={id}
        value={value}
        onChange={(e) => onChange(e.target.value)}
        aria-invalid={!!error}
        aria-describedby={describedBy}
        data-testid={`field-${field.key}`}
      >
        <option value="">(default)</option>
        {options.map((o) => (
          <option key={o} value={o}>
            {o}
          </option>
        ))}
      </select>
    );
  } else if (field.kind === "json" || field.multiline) {
    control = (
      <textarea
        id={id}
        rows={field.kind === "json" ? 5 : 4}
        value={value}
        onChange={(e) => onChange(e.target.value)}
        aria-invalid={!!error}
        aria-describedby={describedBy}
        placeholder={field.kind === "json" ? "JSON" : undefined}
        data-testid={`field-${field.key}`}
      />
    );
  } else {
    const hint =
      field.kind === "number" && (field.min !== undefined || field.max !== undefined)
        ? `${field.integer ? "whole number " : ""}${field.min ?? "…"}–${field.max ?? "…"}`
        : field.kind === "number-list"
          ? "e.g. 1, 4, 5"
          : "";
    const ids = isAiType(type) ? idSuggestions(type, field.key, raw.provider || "local") : null;
    const listId = ids?.options.length ? `${id}-options` : undefined;
    control = (
      <input
        id={id}
        type="text"
        inputMode={field.kind === "number" ? "decimal" : undefined}
        value={value}
        placeholder={ids?.placeholder ?? (hint || "(default)")}
        list={listId}
        onChange={(e) => onChange(e.target.value)}
        aria-invalid={!!error}
        aria-describedby={describedBy}
        data-testid={`field-${field.key}`}
      />
    );
    if (listId) {
      control = (
        <>
          {control}
          <datalist id={listId}>
            {ids!.options.map((o) => (
              <option key={o} value={o} />
            ))}
          </datalist>
        </>
      );
    }
  }
  // Overlay errors name the card and field ("Overlay 1 size: …") rather than the JSON path ("0.size: …").
  const shownError = type === "compose-video" && field.key === "overlays" && error ? overlayError(error) : error;
  return (
    <div className={`field${error ? " invalid" : ""}${type === "compose-video" && field.key === "overlays" ? " overlays-field" : ""}`}>
      <label htmlFor={id}>{field.label}</label>
      {control}
      {field.description && <span className="field-help">{field.description}</span>}
      {error && (
        <span className="field-error" id={describedBy} data-testid={`field-error-${field.key}`}>
          {shownError}
        </span>
      )}
    </div>
  );
}

function overlayError(error: string): string {
  const match = /^(\d+)\.(\w+): (.*)$/.exec(error);
  if (!match) return error;
  return `Overlay ${Number(match[1]) + 1} ${fieldLabel(match[2]!).toLowerCase()}: ${match[3]}`;
}
