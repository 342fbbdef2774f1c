"use client";

import { useEffect, useMemo, useRef, useState } from "react";
import type { NodeType } from "@vp/contracts";
import { configFields, configPatch, evaluateForm, toRaw, type ConfigField } from "@/lib/schema-form";
import type { EditorNode } from "@/lib/graph-state";
import { FieldInput } from "./config-fields";
import { useEditor } from "./context";

const SAVE_DELAY_MS = 450;

type SaveState = "idle" | "pending" | "saving" | "saved" | "invalid" | "failed" | "conflict";

/** An edit refused because someone else changed the node's config meanwhile: theirs is stored, mine is kept here. */
interface ConfigConflict {
  mine: Record<string, unknown>;
  message: string;
}

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
  // The node revision the producer's edit started from: a save is refused if the config changed elsewhere since.
  const base = useRef<number | undefined>(undefined);
  const [conflict, setConflict] = useState<ConfigConflict | null>(null);

  // Another writer (or our own save) changed the stored config: show it unless the producer is editing.
  const storedJson = JSON.stringify(stored);
  useEffect(() => {
    if (!touched) setRaw(rawOf(fields, storedRef.current));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [storedJson]);

  const result = useMemo(() => evaluateForm(node.type, stored, raw), [node.type, stored, raw]);
  const valid = Object.keys(result.errors).length === 0;

  // The save waiting for a pause in typing; sent at once when the panel closes first (Escape right after a change),
  // its refusal then said in a notice, as the form is gone.
  const pending = useRef<((closing?: boolean) => Promise<void>) | undefined>(undefined);
  useEffect(
    () => () => {
      clearTimeout(timer.current);
      void pending.current?.(true);
    },
    [],
  );

  function change(key: string, value: string) {
    const nextRaw = { ...raw, [key]: value };
    setRaw(nextRaw);
    if (!touched && !conflict) base.current = node.revision;
    setTouched(true);
    clearTimeout(timer.current);
    pending.current = undefined;
    const evaluated = evaluateForm(node.type, storedRef.current, nextRaw);
    if (Object.keys(evaluated.errors).length) {
      setSave("invalid");
      return;
    }
    setSave("pending");
    pending.current = async (closing = false) => {
      pending.current = undefined;
      const patch = configPatch(storedRef.current, evaluated.config);
      if (!patch) {
        setSave("saved");
        setTouched(false);
        return;
      }
      setSave("saving");
      let refused = false;
      const ok = await updateNode(
        node.id,
        { config: patch },
        {
          ifRevision: base.current,
          onSaved: (saved) => void (base.current = saved.revision),
          onConflict: closing
            ? undefined
            : ({ message }) => {
                refused = true;
                setConflict({ mine: patch, message });
              },
        },
      );
      setSave(ok ? "saved" : refused ? "conflict" : "failed");
      if (ok) setTouched(false);
    };
    timer.current = setTimeout(() => void pending.current?.(), SAVE_DELAY_MS);
  }

  /** Writes the producer's values over the other change (a deliberate choice, based on the revision now shown). */
  async function keepMine() {
    if (!conflict) return;
    setSave("saving");
    const ok = await updateNode(
      node.id,
      { config: conflict.mine },
      { ifRevision: node.revision, onConflict: ({ message }) => setConflict({ ...conflict, message }) },
    );
    if (ok) {
      setConflict(null);
      setTouched(false);
      setSave("saved");
    } else setSave("conflict");
  }

  /** Drops the producer's edit and shows the config as it is stored now. */
  function takeTheirs() {
    setConflict(null);
    setTouched(false);
    setRaw(rawOf(fields, storedRef.current));
    setSave("idle");
  }

  if (fields.length === 0) return <p className="muted small">This node type has no settings.</p>;

  return (
    <div className="config-form" data-testid="config-form">
      {conflict && (
        <div className="config-conflict" role="alert" data-testid="config-conflict">
          <p>
            <strong>Changed elsewhere.</strong> {conflict.message}.
          </p>
          <p className="small">
            Yours: <code>{JSON.stringify(conflict.mine)}</code> · Now stored: <code>{JSON.stringify(pick(stored, Object.keys(conflict.mine)))}</code>
          </p>
          <div className="row">
            <button type="button" className="button small" onClick={() => void keepMine()} data-testid="conflict-keep-mine">
              Keep mine
            </button>
            <button type="button" className="button secondary small" onClick={takeTheirs} data-testid="conflict-use-theirs">
              Use theirs
            </button>
          </div>
        </div>
      )}
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
                : save === "conflict"
                  ? "Not saved: changed elsewhere (see above)"
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

/** The values of `keys` in `config` (missing ones as null), for showing both sides of a conflict. */
function pick(config: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.map((key) => [key, config[key] ?? null]));
}
