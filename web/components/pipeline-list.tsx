"use client";

import Link from "next/link";
import { useRouter } from "next/navigation";
import { useCallback, useEffect, useRef, useState, type FormEvent } from "react";
import { Title } from "@vp/contracts";
import { ApiError, errorMessage, type ListedPipeline } from "@/lib/api";
import { formatCost, formatWhen } from "@/lib/format";
import { useApi } from "./gateway";
import { ErrorState, LoadingState } from "./states";

type Load = { phase: "loading" } | { phase: "ready" } | { phase: "error"; error: ApiError | Error; retryAt?: number };

const RETRY_MS = 3000;

/** The pipelines list: title, node count, progress, total cost, updated; create, rename, delete, open, import. */
export function PipelineList() {
  const api = useApi();
  const router = useRouter();
  const [pipelines, setPipelines] = useState<ListedPipeline[]>([]);
  const [load, setLoad] = useState<Load>({ phase: "loading" });
  const [title, setTitle] = useState("");
  const [formError, setFormError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [renaming, setRenaming] = useState<{ id: string; title: string } | null>(null);
  const [confirmDelete, setConfirmDelete] = useState<string | null>(null);
  const [importProblems, setImportProblems] = useState<{ message: string; problems: string[] } | null>(null);
  const fileInput = useRef<HTMLInputElement>(null);

  const refresh = useCallback(async () => {
    try {
      const { pipelines } = await api.listPipelines(1, 100);
      setPipelines(pipelines);
      setLoad({ phase: "ready" });
    } catch (error) {
      const unreachable = error instanceof ApiError && error.unreachable;
      setLoad({ phase: "error", error: error as Error, retryAt: unreachable ? Date.now() + RETRY_MS : undefined });
    }
  }, [api]);

  useEffect(() => {
    void refresh();
  }, [refresh]);

  // While the gateway is unreachable, keep trying; the page recovers by itself when it is back.
  useEffect(() => {
    if (load.phase !== "error" || !load.retryAt) return;
    const timer = setTimeout(() => void refresh(), Math.max(0, load.retryAt - Date.now()));
    return () => clearTimeout(timer);
  }, [load, refresh]);

  async function create(event: FormEvent) {
    event.preventDefault();
    const parsed = Title.safeParse(title);
    if (!parsed.success) {
      setFormError(`Title ${parsed.error.issues[0]?.message ?? "is invalid"}`);
      return;
    }
    setBusy(true);
    try {
      const { pipeline } = await api.createPipeline(parsed.data);
      router.push(`/pipelines/${pipeline.id}`);
    } catch (error) {
      setFormError(errorMessage(error));
      setBusy(false);
    }
  }

  async function rename(id: string, next: string) {
    const parsed = Title.safeParse(next);
    if (!parsed.success) {
      setFormError(`Title ${parsed.error.issues[0]?.message ?? "is invalid"}`);
      return;
    }
    try {
      const { pipeline } = await api.renamePipeline(id, parsed.data);
      setPipelines((list) => list.map((p) => (p.id === id ? { ...p, ...pipeline } : p)));
      setRenaming(null);
      setFormError(null);
    } catch (error) {
      setFormError(errorMessage(error));
    }
  }

  async function remove(id: string) {
    try {
      await api.deletePipeline(id);
      setPipelines((list) => list.filter((p) => p.id !== id));
      setConfirmDelete(null);
    } catch (error) {
      setFormError(errorMessage(error));
    }
  }

  async function importFile(file: File) {
    setImportProblems(null);
    let document: unknown;
    try {
      document = JSON.parse(await file.text());
    } catch (error) {
      setImportProblems({ message: `${file.name} is not valid JSON`, problems: [errorMessage(error)] });
      return;
    }
    try {
      const { pipeline } = await api.importPipeline(document);
      router.push(`/pipelines/${pipeline.id}`);
    } catch (error) {
      const problems = error instanceof ApiError ? (error.problems ?? []).map((p) => p.text ?? p.message) : [];
      setImportProblems({ message: `${file.name} was not imported: ${errorMessage(error)}`, problems });
    }
  }

  return (
    <main className="page">
      <header className="page-header">
        <div>
          <h1>Video pipelines</h1>
          <p className="muted">Draw a graph of video steps, press play, watch every node run live.</p>
        </div>
        <div className="row">
          <button type="button" className="button secondary" onClick={() => fileInput.current?.click()} data-testid="import-button">
            Import JSON
          </button>
          <input
            ref={fileInput}
            type="file"
            accept="application/json,.json"
            hidden
            data-testid="import-input"
            onChange={(e) => {
              const file = e.target.files?.[0];
              e.target.value = "";
              if (file) void importFile(file);
            }}
          />
        </div>
      </header>

      <form className="create-form" onSubmit={create}>
        <input
          aria-label="New pipeline title"
          placeholder="New pipeline title, e.g. Episode 12 intro"
          value={title}
          onChange={(e) => {
            setTitle(e.target.value);
            setFormError(null);
          }}
          data-testid="new-pipeline-title"
        />
        <button type="submit" className="button" disabled={busy} data-testid="create-pipeline">
          Create pipeline
        </button>
      </form>
      {formError && (
        <p className="field-error" role="alert">
          {formError}
        </p>
      )}
      {importProblems && (
        <div className="problems" role="alert" data-testid="import-problems">
          <strong>{importProblems.message}</strong>
          {importProblems.problems.length > 0 && (
            <ul>
              {importProblems.problems.map((p, i) => (
                <li key={i}>{p}</li>
              ))}
            </ul>
          )}
        </div>
      )}

      {load.phase === "loading" && <LoadingState label="Loading pipelines…" />}
      {load.phase === "error" && (
        <ErrorState
          title={load.error instanceof ApiError && load.error.unreachable ? "The gateway is not reachable" : "Could not load the pipelines"}
          message={errorMessage(load.error)}
          retryAt={load.retryAt}
          onRetry={() => void refresh()}
        />
      )}
      {load.phase === "ready" && pipelines.length === 0 && (
        <div className="state-box empty" data-testid="empty-list">
          <strong>No pipelines yet</strong>
          <p>Create one above, or import a pipeline JSON file.</p>
        </div>
      )}
      {load.phase === "ready" && pipelines.length > 0 && (
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
            {pipelines.map((p) => {
              const counts = p.node_counts;
              const total = counts?.total ?? 0;
              const done = counts?.completed ?? 0;
              const cost = typeof p.metadata?.totalCost === "number" ? p.metadata.totalCost : 0;
              return (
                <tr key={p.id} data-testid="pipeline-row" data-id={p.id}>
                  <td className="title-cell">
                    {renaming?.id === p.id ? (
                      <form
                        className="row"
                        onSubmit={(e) => {
                          e.preventDefault();
                          void rename(p.id, renaming.title);
                        }}
                      >
                        <input
                          autoFocus
                          aria-label="Pipeline title"
                          value={renaming.title}
                          onChange={(e) => setRenaming({ id: p.id, title: e.target.value })}
                          onKeyDown={(e) => e.key === "Escape" && setRenaming(null)}
                        />
                        <button type="submit" className="button small">
                          Save
                        </button>
                      </form>
                    ) : (
                      <Link href={`/pipelines/${p.id}`} className="pipeline-link">
                        {p.title}
                      </Link>
                    )}
                  </td>
                  <td className="num">{total}</td>
                  <td>
                    <div className="progress-cell" title={`${done} of ${total} completed`}>
                      <div className="bar">
                        <div className="bar-fill completed" style={{ width: total ? `${(done / total) * 100}%` : 0 }} />
                      </div>
                      <span className="muted small">
                        {done}/{total}
                        {counts?.failed ? ` · ${counts.failed} failed` : ""}
                        {counts && counts.in_progress + counts.queued ? ` · ${counts.in_progress + counts.queued} running` : ""}
                      </span>
                    </div>
                  </td>
                  <td className="num">{formatCost(cost)}</td>
                  <td className="muted">{formatWhen(p.updated_at)}</td>
                  <td className="actions">
                    {confirmDelete === p.id ? (
                      <>
                        <span className="small">Delete?</span>
                        <button type="button" className="button small danger" onClick={() => void remove(p.id)}>
                          Yes, delete
                        </button>
                        <button type="button" className="button small secondary" onClick={() => setConfirmDelete(null)}>
                          Cancel
                        </button>
                      </>
                    ) : (
                      <>
                        <Link className="button small" href={`/pipelines/${p.id}`}>
                          Open
                        </Link>
                        <button type="button" className="button small secondary" onClick={() => setRenaming({ id: p.id, title: p.title })}>
                          Rename
                        </button>
                        <button type="button" className="button small secondary" onClick={() => setConfirmDelete(p.id)}>
                          Delete
                        </button>
                      </>
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </main>
  );
}
