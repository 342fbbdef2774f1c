"use client";

import CodeMirror from "@uiw/react-codemirror";
import { javascript } from "@codemirror/lang-javascript";
import { python } from "@codemirror/lang-python";
import type { NodeType } from "@vp/contracts";
import { idSuggestions, isAiType, PROVIDER_LABEL, providersOf } from "@/lib/ai";
import { choiceOptions, fieldControl, languageOptions, overlayError, textHint, type FieldControl } from "@/lib/field-controls";
import type { ConfigField } from "@/lib/schema-form";
import { OverlaysEditor } from "./overlays-editor";
import { PlaceholderChips } from "./placeholders";
import { useTheme } from "../theme-switch";

export interface FieldInputProps {
  type: NodeType;
  field: ConfigField;
  value: string;
  error?: string;
  onChange: (value: string) => void;
  /** Every field's raw value: the code editor highlights the chosen language, id suggestions follow the provider. */
  raw: Record<string, string>;
  overlayCount?: number;
  /** The node's inputs (compose-video's placement preview draws its background and overlays). */
  inputs?: Record<string, string[]>;
}

/** What each control gets: the field's props, its input id, and the id of its error (when it has one). */
type ControlProps = FieldInputProps & { id: string; describedBy?: string };

/** One field of the config form: its label, the control for its kind, its help, and its error. */
export function FieldInput(props: FieldInputProps) {
  const { type, field, error } = props;
  const id = `config-${field.key}`;
  const describedBy = error ? `${id}-error` : undefined;
  const control = fieldControl(type, field);
  const shownError = control === "overlays" && error ? overlayError(error) : error;
  return (
    <div className={`field${error ? " invalid" : ""}${control === "overlays" ? " overlays-field" : ""}`}>
      <label htmlFor={id}>{field.label}</label>
      <Control control={control} {...props} id={id} describedBy={describedBy} />
      {(control === "text" || control === "multiline") && <PlaceholderChips text={props.value} testId={`placeholders-config-${field.key}`} />}
      {field.description && <span className="field-help">{field.description}</span>}
      {error && (
        <span className="field-error" id={describedBy} data-testid={`field-error-${field.key}`}>
          {shownError}
        </span>
      )}
    </div>
  );
}

function Control({ control, ...props }: ControlProps & { control: FieldControl }) {
  switch (control) {
    case "code":
      return <CodeField {...props} />;
    case "language":
      return <LanguageField {...props} />;
    case "provider":
      return <ProviderField {...props} />;
    case "overlays":
      return <OverlaysEditor value={props.value} onChange={props.onChange} overlayCount={props.overlayCount ?? 0} inputs={props.inputs} error={props.error} />;
    case "choice":
      return <ChoiceField {...props} />;
    case "multiline":
      return <MultilineField {...props} />;
    case "text":
      return <TextField {...props} />;
  }
}

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

/** The code animation's code, highlighted in the language picked beside it. */
function CodeField({ value, onChange, raw }: ControlProps) {
  const { resolved } = useTheme();
  return (
    <div className="code-editor" data-testid="code-editor">
      <CodeMirror
        value={value}
        height="180px"
        theme={resolved}
        extensions={codeExtensions(raw.language || "javascript")}
        onChange={onChange}
        basicSetup={{ lineNumbers: true, foldGutter: false, highlightActiveLine: true }}
        aria-label="Code"
      />
    </div>
  );
}

function LanguageField({ id, field, value, onChange }: ControlProps) {
  return (
    <select id={id} value={value} onChange={(e) => onChange(e.target.value)} data-testid={`field-${field.key}`}>
      <option value="">(default: javascript)</option>
      {languageOptions(value).map((o) => (
        <option key={o} value={o}>
          {o}
        </option>
      ))}
    </select>
  );
}

/** An AI node's provider, local first: the executor's default when the node names none and no API key is configured. */
function ProviderField({ id, describedBy, type, field, value, error, onChange }: ControlProps) {
  return (
    <select
      id={id}
      value={value}
      onChange={(e) => onChange(e.target.value)}
      aria-invalid={!!error}
      aria-describedby={describedBy}
      data-testid={`field-${field.key}`}
    >
      <option value="">(default: local unless an API key is set)</option>
      {isAiType(type) &&
        providersOf(type).map((o) => (
          <option key={o} value={o}>
            {PROVIDER_LABEL[o] ?? o}
          </option>
        ))}
    </select>
  );
}

/** An enum's values, or true/false. */
function ChoiceField({ id, describedBy, field, value, error, onChange }: ControlProps) {
  return (
    <select
      id={id}
      value={value}
      onChange={(e) => onChange(e.target.value)}
      aria-invalid={!!error}
      aria-describedby={describedBy}
      data-testid={`field-${field.key}`}
    >
      <option value="">(default)</option>
      {choiceOptions(field).map((o) => (
        <option key={o} value={o}>
          {o}
        </option>
      ))}
    </select>
  );
}

/** JSON, or a long text. */
function MultilineField({ id, describedBy, field, value, error, onChange }: ControlProps) {
  return (
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
}

/** A one-line text or number, with the provider's ids as suggestions on AI nodes (free text is still accepted). */
function TextField({ id, describedBy, type, field, value, error, onChange, raw }: ControlProps) {
  const ids = isAiType(type) ? idSuggestions(type, field.key, raw.provider || "local") : null;
  const listId = ids?.options.length ? `${id}-options` : undefined;
  const input = (
    <input
      id={id}
      type="text"
      inputMode={field.kind === "number" ? "decimal" : undefined}
      value={value}
      placeholder={ids?.placeholder ?? (textHint(field) || "(default)")}
      list={listId}
      onChange={(e) => onChange(e.target.value)}
      aria-invalid={!!error}
      aria-describedby={describedBy}
      data-testid={`field-${field.key}`}
    />
  );
  if (!listId) return input;
  return (
    <>
      {input}
      <datalist id={listId}>
        {ids!.options.map((o) => (
          <option key={o} value={o} />
        ))}
      </datalist>
    </>
  );
}
