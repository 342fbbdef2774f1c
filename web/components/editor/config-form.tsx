"use client";

import { useEffect, useMemo, useRef, useState } from "react";
import type { NodeType } from "@vp/contracts";
import { configFields, configPatch, evaluateForm, toRaw, type ConfigField } from "@/lib/schema-form";
import type { EditorNode } from "@/lib/graph-state";
import { FieldInput } from "./config-fields";
import { useEditor } from "./context";

const SAVE_DELAY_MS = 450;

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
          inputs={node.inputs}
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
