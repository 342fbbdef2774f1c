"use client";

import { useEffect, useRef, useState } from "react";
import { MEDIA_TYPES, Title, type MediaType } from "@vp/contracts";
import { estimateNode, isAiType, PROVIDER_LABEL } from "@/lib/ai";
import { exactCost, formatBytes, formatCost, formatDuration } from "@/lib/format";
import { inputSlots, MEDIA_LABEL, NODE_TYPE_INFO } from "@/lib/node-types";
import type { EditorNode } from "@/lib/graph-state";
import { NodeTypeIcon } from "../icons";
import { AssetText, AssetUpload, isTextAsset } from "./asset-body";
import { ConfigForm } from "./config-form";
import { MergeTimeline } from "./merge-timeline";
import { useEditor } from "./context";
import { LocalDraftBadge } from "./node-card";
import { CachedBadge, PanelRunActions } from "./node-run-actions";
import { OutputPreview } from "./output-preview";
import { StatusBadge } from "./status";

const TITLE_SAVE_DELAY_MS = 450;

/** The side panel of the selected node: title, asset, inputs (with the segment order), config, run, a merge's timeline. */
export function NodePanel({ node, onClose }: { node: EditorNode; onClose: () => void }) {
  const info = NODE_TYPE_INFO[node.type];
  const { readOnly } = useEditor();
  return (
    <aside className="panel" aria-label={`${node.title} settings`} data-testid="node-panel">
      <div className="panel-head" style={{ borderTopColor: info.color }}>
        <span className="node-icon" style={{ ["--accent" as string]: info.color, ["--tint" as string]: info.tint }}>
          <NodeTypeIcon type={node.type} />
        </span>
        <div className="node-titles">
          <div className="panel-type">{info.label}</div>
          <div className="muted small mono" title="Node id">
            {node.id}
          </div>
        </div>
        <button type="button" className="icon-button" aria-label="Close panel (Escape)" onClick={onClose}>
          ×
        </button>
      </div>
      {/* Read-only: every field and button of the panel is off (outputs still play and download). */}
      <fieldset className="panel-scroll panel-fieldset" disabled={readOnly !== null} title={readOnly ?? undefined}>
        <TitleField key={`title-${node.id}`} node={node} />
        {node.type === "asset" && <AssetSection node={node} />}
        {inputSlots(node.type).length > 0 && <InputsSection node={node} />}
        {node.type !== "asset" && (
          <section className="panel-section">
            <h3>Settings</h3>
            {isAiType(node.type) && <EstimateStrip node={node} />}
            <ConfigForm key={`config-${node.id}`} node={node} />
          </section>
        )}
        <RunSection node={node} />
        {node.type === "merge-videos" && <MergeTimeline node={node} />}
        <DeleteSection node={node} />
      </fieldset>
    </aside>
  );
}

function TitleField({ node }: { node: EditorNode }) {
  const { updateNode } = useEditor();
  const [value, setValue] = useState(node.title);
  const [error, setError] = useState<string | null>(null);
  const [editing, setEditing] = useState(false);
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  // The save waiting for a pause in typing; sent at once when the panel closes first (Escape right after typing).
  const pending = useRef<(() => void) | undefined>(undefined);
  // The revision the rename started from: a title changed elsewhere meanwhile is not overwritten.
  const base = useRef<number | undefined>(undefined);
  useEffect(() => {
    if (!editing) setValue(node.title);
  }, [node.title, editing]);
  useEffect(
    () => () => {
      clearTimeout(timer.current);
      pending.current?.();
    },
    [],
  );
  return (
    <section className="panel-section">
      <div className={`field${error ? " invalid" : ""}`}>
        <label htmlFor="node-title">Title</label>
        <input
          id="node-title"
          value={value}
          data-testid="panel-title"
          aria-invalid={!!error}
          onFocus={() => {
            base.current = node.revision;
            setEditing(true);
          }}
          onBlur={() => setEditing(false)}
          onChange={(e) => {
            const next = e.target.value;
            setValue(next);
            clearTimeout(timer.current);
            pending.current = undefined;
            const parsed = Title.safeParse(next);
            if (!parsed.success) {
              setError(`Title ${parsed.error.issues[0]?.message ?? "is invalid"}; not saved`);
              return;
            }
            setError(null);
            pending.current = () => {
              pending.current = undefined;
              if (parsed.data !== node.title) {
                void updateNode(node.id, { title: parsed.data }, { ifRevision: base.current, onSaved: (saved) => void (base.current = saved.revision) });
              }
            };
            timer.current = setTimeout(() => pending.current?.(), TITLE_SAVE_DELAY_MS);
          }}
        />
        {error && (
          <span className="field-error" data-testid="title-error">
            {error}
          </span>
        )}
      </div>
    </section>
  );
}

function AssetSection({ node }: { node: EditorNode }) {
  const { updateNode } = useEditor();
  const asset = (node.asset ?? {}) as { type?: MediaType; source?: string };
  const pending = node.status === "pending";
  return (
    <section className="panel-section">
      <h3>Asset</h3>
      <div className="field">
        <label htmlFor="asset-type">Media type</label>
        <select
          id="asset-type"
          value={asset.type ?? ""}
          disabled={!pending || !!asset.source}
          title={asset.source ? "Fixed by the uploaded file" : undefined}
          onChange={(e) => void updateNode(node.id, { asset: { type: e.target.value } })}
          data-testid="asset-type"
        >
          {MEDIA_TYPES.map((t) => (
            <option key={t} value={t}>
              {MEDIA_LABEL[t]}
            </option>
          ))}
        </select>
      </div>
      {isTextAsset(node) ? <AssetText node={node} rows={8} /> : <AssetUpload node={node} compact />}
      {(asset.type === "video" || asset.type === "audio" || asset.type === "image") && <VariableBinding node={node} type={asset.type} />}
    </section>
  );
}

/** A media asset bound to a media variable of its type: each batch row gives its own file; a plain run uses this one. */
function VariableBinding({ node, type }: { node: EditorNode; type: "video" | "audio" | "image" }) {
  const { updateNode, variables } = useEditor();
  const bound = (node.asset as { variable?: string } | null)?.variable ?? "";
  const fitting = variables.filter((v) => v.type === type);
  const missing = bound && !fitting.some((v) => v.name === bound);
  return (
    <div className={`field${missing ? " invalid" : ""}`}>
      <label htmlFor="asset-variable">Variable</label>
      <select
        id="asset-variable"
        value={bound}
        disabled={node.status !== "pending"}
        onChange={(e) => void updateNode(node.id, { asset: { variable: e.target.value || null } })}
        data-testid="asset-variable"
      >
        <option value="">None: this file in every run</option>
        {missing && (
          <option value={bound}>
            {bound} (not a {type} variable)
          </option>
        )}
        {fitting.map((v) => (
          <option key={v.name} value={v.name}>
            {v.name}
          </option>
        ))}
      </select>
      <span className="field-help">
        {fitting.length === 0
          ? `Declare a ${type} variable in Variables to give each batch row its own file.`
          : "Bound: each batch row gives its own file (an upload or a URL); a plain run uses the file above."}
      </span>
    </div>
  );
}

/** Connected inputs per slot; a slot that takes several (merge-videos segments) can be reordered. */
function InputsSection({ node }: { node: EditorNode }) {
  const { nodes, updateNode } = useEditor();
  const reorder = (slot: string, ids: string[], from: number, to: number) => {
    const next = [...ids];
    const [moved] = next.splice(from, 1);
    next.splice(to, 0, moved!);
    void updateNode(node.id, { inputs: { [slot]: next } });
  };
  return (
    <section className="panel-section">
      <h3>Inputs</h3>
      {inputSlots(node.type).map((slot) => {
        const ids = node.inputs?.[slot.slot] ?? [];
        return (
          <div className="slot-list" key={slot.slot} data-testid={`panel-slot-${slot.slot}`}>
            <div className="slot-list-head">
              <strong>{slot.slot}</strong>
              <span className="muted small">
                {slot.description} · {slot.hint}
              </span>
            </div>
            {ids.length === 0 && <p className="muted small">Drag from a node&apos;s output onto the “{slot.slot}” handle.</p>}
            <ol>
              {ids.map((id, index) => (
                <li key={id} data-testid="slot-item" data-id={id}>
                  <span className="order">{index + 1}</span>
                  <span className="slot-item-title" title={id}>
                    {nodes.get(id)?.title ?? id}
                  </span>
                  {slot.max > 1 && (
                    <>
                      <button
                        type="button"
                        className="icon-button"
                        disabled={index === 0}
                        aria-label={`Move ${nodes.get(id)?.title ?? id} up`}
                        onClick={() => reorder(slot.slot, ids, index, index - 1)}
                      >
                        ↑
                      </button>
                      <button
                        type="button"
                        className="icon-button"
                        disabled={index === ids.length - 1}
                        aria-label={`Move ${nodes.get(id)?.title ?? id} down`}
                        onClick={() => reorder(slot.slot, ids, index, index + 1)}
                      >
                        ↓
                      </button>
                    </>
                  )}
                  <button
                    type="button"
                    className="icon-button"
                    aria-label={`Disconnect ${nodes.get(id)?.title ?? id}`}
                    onClick={() => void updateNode(node.id, { inputs: { [slot.slot]: ids.filter((x) => x !== id) } })}
                  >
                    ×
                  </button>
                </li>
              ))}
            </ol>
          </div>
        );
      })}
    </section>
  );
}

/** AI nodes: what running is expected to cost (before), or what it cost (after), above the provider choice. */
function EstimateStrip({ node }: { node: EditorNode }) {
  const { lookup } = useEditor();
  const estimate = estimateNode(node, lookup);
  if (!estimate) return null;
  const cost = node.metadata?.cost;
  const provider = PROVIDER_LABEL[estimate.provider] ?? estimate.provider;
  // A local provider charges nothing: what it costs is this machine's compute.
  const kind = estimate.provider === "local" ? "compute cost" : "cost";
  return (
    <div className="estimate-strip" data-testid="panel-estimate">
      {cost !== undefined ? (
        <>
          <span>
            {kind === "cost" ? "Cost" : "Compute cost"}{" "}
            <strong data-testid="panel-cost" title={exactCost(cost)}>
              {formatCost(cost)}
            </strong>
          </span>
          <span className="muted" title={exactCost(estimate.usd)}>
            estimated {formatCost(estimate.usd)}
          </span>
        </>
      ) : (
        <>
          <span>
            Estimated {kind}{" "}
            <strong data-testid="panel-estimated" title={exactCost(estimate.usd)}>
              {formatCost(estimate.usd)}
            </strong>
          </span>
          <span className="muted">{provider.replace(/ \(.*\)$/, "")}</span>
        </>
      )}
    </div>
  );
}

function RunSection({ node }: { node: EditorNode }) {
  const { api, pipelineId, lookup, outdated } = useEditor();
  const isOutdated = node.status === "completed" && outdated.has(node.id);
  const m = node.metadata ?? {};
  const output = node.output;
  const rows: Array<[string, string]> = [];
  const estimate = estimateNode(node, lookup);
  if (isAiType(node.type)) {
    const provider = String(output?.provider ?? m.provider ?? node.config?.provider ?? "local");
    rows.push(["Provider", `${PROVIDER_LABEL[provider] ?? provider}${!m.provider && !node.config?.provider ? " unless an API key is set" : ""}`]);
  }
  if (estimate) rows.push(["Estimated", formatCost(estimate.usd)]);
  if (m.jobId) rows.push(["Job", String(m.jobId)]);
  if (m.startedAt) rows.push(["Started", new Date(m.startedAt).toLocaleTimeString("en-GB")]);
  if (m.completedAt) rows.push(["Finished", new Date(m.completedAt).toLocaleTimeString("en-GB")]);
  if (m.retries) rows.push(["Retries", String(m.retries)]);
  if (m.cost !== undefined) rows.push(["Cost", formatCost(m.cost)]);
  if (m.cached && node.status === "completed") {
    rows.push(["Saved", formatCost(m.costSaved ?? 0)]);
    if (m.cachedFrom) rows.push(["Cached from", `${m.cachedFrom.nodeId}${m.cachedFrom.pipelineId === node.pipeline_id ? "" : " (another pipeline)"}`]);
  }
  if (output?.duration !== undefined) rows.push(["Duration", formatDuration(output.duration)]);
  if (output?.size !== undefined) rows.push(["Size", formatBytes(output.size)]);
  if (output?.width && output.height) rows.push(["Frame", `${output.width}×${output.height}`]);
  return (
    <section className="panel-section">
      <h3>Run</h3>
      <div className="row">
        <StatusBadge status={node.status} outdated={isOutdated} testId="panel-status" />
      </div>
      {rows.length > 0 && (
        <dl className="facts">
          {rows.map(([k, v]) => (
            <div key={k}>
              <dt>{k}</dt>
              <dd className={k === "Job" ? "mono" : undefined} data-testid={`fact-${k.toLowerCase()}`}>
                {v}
              </dd>
            </div>
          ))}
        </dl>
      )}
      {(node.status === "failed" || node.status === "cancelled") && m.error && (
        <p className={`node-error full${node.status === "cancelled" ? " cancelled" : ""}`} data-testid="panel-error">
          {m.error}
        </p>
      )}
      <PanelRunActions node={node} />
      {node.status === "completed" && output && (
        <>
          <LocalDraftBadge node={node} prefix="panel-" />
          <CachedBadge node={node} prefix="panel-" />
          {isOutdated && (
            <p className="outdated-note" data-testid="panel-outdated">
              This result is outdated: it was made before the node's config or one of its inputs changed. Run the node again to replace it.
            </p>
          )}
          <OutputPreview node={node} large />
          <a className="link-button" href={api.outputUrl(pipelineId, node.id)} download data-testid="download-output">
            {isOutdated ? "Download outdated output" : "Download output"}
          </a>
          {Object.keys(output.files ?? {}).map((name) => (
            <a key={name} className="link-button" href={api.outputUrl(pipelineId, node.id, undefined, name)} download data-testid={`download-${name}`}>
              Download {name.toUpperCase()}
            </a>
          ))}
        </>
      )}
    </section>
  );
}

function DeleteSection({ node }: { node: EditorNode }) {
  const { removeNode, updateNode, duplicate } = useEditor();
  const running = node.status === "queued" || node.status === "in_progress";
  return (
    <section className="panel-section row">
      <button
        type="button"
        className="button small"
        aria-pressed={node.disabled === true}
        title={
          node.disabled
            ? "Switch the node back on: runs include it again"
            : "Switch the node off: runs skip it and everything downstream of it, and its result is kept"
        }
        onClick={() => void updateNode(node.id, { disabled: !node.disabled })}
        data-testid="toggle-disabled"
      >
        {node.disabled ? "Enable node" : "Disable node"}
      </button>
      <button
        type="button"
        className="button small"
        title="Copy this node beside it (Ctrl+D; Ctrl+C and Ctrl+V copy into another pipeline too)"
        onClick={() => void duplicate([node.id])}
        data-testid="duplicate-node"
      >
        Duplicate
      </button>
      <button
        type="button"
        className="button small danger"
        disabled={running}
        title={running ? "Wait until it has finished" : "Delete this node (or press Delete on the canvas)"}
        onClick={() => void removeNode(node.id)}
        data-testid="delete-node"
      >
        Delete node
      </button>
    </section>
  );
}
