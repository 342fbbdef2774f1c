"use client";

import { useCallback, useEffect, useState } from "react";
import type { SerializedPipeline } from "@vp/contracts";
import { errorMessage, type Api, type ApiNode, type RevisionDetail, type RevisionEntry } from "@/lib/api";
import { formatWhen } from "@/lib/format";

interface VersionHistoryProps {
  api: Api;
  pipelineId: string;
  /** The revision the editor shows: the list reloads when it moves. */
  revision: number;
  onClose(): void;
  /** A restore answered with the pipeline as it now is. */
  onRestored(pipeline: SerializedPipeline & { nodes: ApiNode[] }, revision: number, restored: number): void;
  toast(message: string, kind?: "error" | "info"): void;
  /** Why restoring is off (no editor role), or null. */
  readOnly: string | null;
}

/**
 * The pipeline's versions, newest first: every structure change is one (who, when, what). Selecting one shows
 * the pipeline as it was then; restoring it makes that the current structure as a new version, so a restore can
 * itself be undone by restoring the version before it.
 */
export function VersionHistory({ api, pipelineId, revision, onClose, onRestored, toast, readOnly }: VersionHistoryProps) {
  const [list, setList] = useState<RevisionEntry[] | undefined>();
  const [error, setError] = useState<string | null>(null);
  const [selected, setSelected] = useState<number | null>(null);
  const [detail, setDetail] = useState<RevisionDetail | null>(null);
  const [restoring, setRestoring] = useState(false);

  useEffect(() => {
    let cancelled = false;
    api
      .listRevisions(pipelineId, { limit: 100 })
      .then(({ revisions }) => !cancelled && (setList(revisions), setError(null)))
      .catch((e: unknown) => !cancelled && setError(`Could not load the versions: ${errorMessage(e)}`));
    return () => void (cancelled = true);
  }, [api, pipelineId, revision]);

  useEffect(() => {
    if (selected === null) return setDetail(null);
    let cancelled = false;
    api
      .getRevision(pipelineId, selected)
      .then((d) => !cancelled && setDetail(d))
      .catch((e: unknown) => !cancelled && setError(`Could not load version ${selected}: ${errorMessage(e)}`));
    return () => void (cancelled = true);
  }, [api, pipelineId, selected]);

  const restore = useCallback(async () => {
    if (selected === null) return;
    setRestoring(true);
    try {
      const answer = await api.restoreRevision(pipelineId, selected);
      onRestored(answer.pipeline, answer.revision, selected);
      toast(`Restored version ${selected} (now version ${answer.revision}; restore version ${answer.revision - 1} to go back)`, "info");
      setSelected(null);
    } catch (e) {
      toast(`Not restored: ${errorMessage(e)}`);
    } finally {
      setRestoring(false);
    }
  }, [api, pipelineId, selected, onRestored, toast]);

  return (
    <aside className="run-history version-history" aria-label="Version history" data-testid="version-history">
      <div className="run-history-head">
        <h3>Versions</h3>
        <button type="button" className="icon-button" aria-label="Close version history" onClick={onClose}>
          ×
        </button>
      </div>
      {error && <p className="node-error full">{error}</p>}
      {list === undefined && !error && <p className="muted small">Loading…</p>}
      {list?.length === 0 && <p className="muted small">No changes yet: every change to the pipeline's nodes shows here.</p>}
      <ol className="version-list">
        {list?.map((entry) => (
          <li key={entry.revision}>
            <button
              type="button"
              className={`version-item${selected === entry.revision ? " selected" : ""}`}
              onClick={() => setSelected(selected === entry.revision ? null : entry.revision)}
              aria-expanded={selected === entry.revision}
              data-testid="version-row"
              data-revision={entry.revision}
            >
              <span className="version-summary">{entry.summary}</span>
              <span className="muted small">
                {entry.revision === revision ? "Current · " : ""}v{entry.revision} · {entry.created_by} · {formatWhen(entry.created_at)}
              </span>
            </button>
            {selected === entry.revision && detail && detail.current >= entry.revision && (
              <VersionDetail detail={detail} current={revision} restoring={restoring} readOnly={readOnly} onRestore={() => void restore()} />
            )}
          </li>
        ))}
      </ol>
    </aside>
  );
}

function VersionDetail({
  detail,
  current,
  restoring,
  readOnly,
  onRestore,
}: {
  detail: RevisionDetail;
  current: number;
  restoring: boolean;
  readOnly: string | null;
  onRestore(): void;
}) {
  const number = detail.revision.revision;
  return (
    <div className="version-detail" data-testid="version-detail">
      <p className="small">
        As it was: <strong>{detail.pipeline.title}</strong>, {detail.nodes.length} node{detail.nodes.length === 1 ? "" : "s"}
      </p>
      <ul className="version-nodes small">
        {detail.nodes.map((node) => (
          <li key={node.id}>
            {node.title} <span className="muted">({node.type})</span>
          </li>
        ))}
      </ul>
      <button
        type="button"
        className="button small"
        disabled={restoring || number === current || readOnly !== null}
        title={readOnly ?? (number === current ? "This is the current version" : "Make this the current structure (as a new version)")}
        onClick={onRestore}
        data-testid="version-restore"
      >
        {restoring ? "Restoring…" : "Restore this version"}
      </button>
    </div>
  );
}
