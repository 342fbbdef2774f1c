"use client";

import Link from "next/link";
import { useState } from "react";
import type { ListedPipeline } from "@/lib/api";
import { formatCost, formatWhen } from "@/lib/format";
import { pipelineProgress } from "@/lib/pipelines";
import { useCanEdit } from "./account";

type Rename = (id: string, title: string) => Promise<boolean>;
type Remove = (id: string) => Promise<boolean>;

/** The pipelines as a table; one row at a time is renamed in place or asks to confirm its deletion. */
export function PipelineTable({ pipelines, rename, remove }: { pipelines: ListedPipeline[]; rename: Rename; remove: Remove }) {
  const [renaming, setRenaming] = useState<{ id: string; title: string } | null>(null);
  const [confirmDelete, setConfirmDelete] = useState<string | null>(null);
  return (
    <table className="pipelines" data-testid="pipeline-table">
      <thead>
        <tr>
          <th>Title</th>
          <th className="num">Nodes</th>
          <th>Progress</th>
          <th className="num">Total cost</th>
          <th>Updated</th>
          <th aria-label="Actions" />
        </tr>
      </thead>
      <tbody>
        {pipelines.map((p) => (
          <tr key={p.id} data-testid="pipeline-row" data-id={p.id}>
            <td className="title-cell">
              {renaming?.id === p.id ? (
                <RenameForm
                  value={renaming.title}
                  onChange={(title) => setRenaming({ id: p.id, title })}
                  onCancel={() => setRenaming(null)}
                  onSave={async () => {
                    if (await rename(p.id, renaming.title)) setRenaming(null);
                  }}
                />
              ) : (
                <Link href={`/pipelines/${p.id}`} className="pipeline-link">
                  {p.title}
                </Link>
              )}
            </td>
            <ProgressCells pipeline={p} />
            <td className="actions">
              {confirmDelete === p.id ? (
                <ConfirmDelete
                  onConfirm={async () => {
                    if (await remove(p.id)) setConfirmDelete(null);
                  }}
                  onCancel={() => setConfirmDelete(null)}
                />
              ) : (
                <RowActions id={p.id} onRename={() => setRenaming({ id: p.id, title: p.title })} onDelete={() => setConfirmDelete(p.id)} />
              )}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function RenameForm({
  value,
  onChange,
  onCancel,
  onSave,
}: {
  value: string;
  onChange: (title: string) => void;
  onCancel: () => void;
  onSave: () => Promise<void>;
}) {
  return (
    <form
      className="row"
      onSubmit={(e) => {
        e.preventDefault();
        void onSave();
      }}
    >
      <input
        autoFocus
        aria-label="Pipeline title"
        value={value}
        onChange={(e) => onChange(e.target.value)}
        onKeyDown={(e) => e.key === "Escape" && onCancel()}
      />
      <button type="submit" className="button small">
        Save
      </button>
    </form>
  );
}

/** Nodes, progress (completed of total, with failed and running), total cost, last update. */
function ProgressCells({ pipeline }: { pipeline: ListedPipeline }) {
  const { total, done, failed, running, cost } = pipelineProgress(pipeline);
  return (
    <>
      <td className="num">{total}</td>
      <td>
        <div className="progress-cell" title={`${done} of ${total} completed`}>
          <div className="bar">
            <div className="bar-fill completed" style={{ width: total ? `${(done / total) * 100}%` : 0 }} />
          </div>
          <span className="muted small">
            {done}/{total}
            {failed ? ` · ${failed} failed` : ""}
            {running ? ` · ${running} running` : ""}
          </span>
        </div>
      </td>
      <td className="num">{formatCost(cost)}</td>
      <td className="muted">{formatWhen(pipeline.updated_at)}</td>
    </>
  );
}

function ConfirmDelete({ onConfirm, onCancel }: { onConfirm: () => Promise<void>; onCancel: () => void }) {
  return (
    <>
      <span className="small">Delete?</span>
      <button type="button" className="button small danger" onClick={() => void onConfirm()}>
        Yes, delete
      </button>
      <button type="button" className="button small secondary" onClick={onCancel}>
        Cancel
      </button>
    </>
  );
}

function RowActions({ id, onRename, onDelete }: { id: string; onRename: () => void; onDelete: () => void }) {
  // Read-only users (signed in without the editor role) see why instead of a refusal after the click.
  const { canEdit, reason } = useCanEdit();
  return (
    <>
      <Link className="button small" href={`/pipelines/${id}`}>
        Open
      </Link>
      <button type="button" className="button small secondary" disabled={!canEdit} title={reason} onClick={onRename}>
        Rename
      </button>
      <button type="button" className="button small secondary" disabled={!canEdit} title={reason} onClick={onDelete}>
        Delete
      </button>
    </>
  );
}
