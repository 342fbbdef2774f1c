"use client";

import { useRouter } from "next/navigation";
import { useCallback, useEffect, useRef, useState, type FormEvent } from "react";
import { ApiError, errorMessage, type Api, type ListedPipeline } from "@/lib/api";
import { checkTitle, filterPipelines, importFailure, readImport, sortPipelines, type ImportFailure } from "@/lib/pipelines";
import { useCanEdit } from "./account";
import { useApi } from "./gateway";
import { PipelineTable } from "./pipeline-table";
import { ErrorState, LoadingState } from "./states";
import { ThemeSwitch } from "./theme-switch";

type Load = { phase: "loading" } | { phase: "ready" } | { phase: "error"; error: ApiError | Error; retryAt?: number };

const RETRY_MS = 3000;

/** The pipelines list: title, node count, progress, total cost, updated; create, rename, delete, open, import. */
export function PipelineList() {
  const api = useApi();
  const [formError, setFormError] = useState<string | null>(null);
  const { pipelines, load, refresh, rename, remove } = usePipelines(api, setFormError);
  const { importProblems, importFile } = useImport(api);
  const [search, setSearch] = useState("");
  const shown = filterPipelines(pipelines, search);
  return (
    <main className="page">
      <ListHeader onImport={(file) => void importFile(file)} />
      <CreateForm api={api} setFormError={setFormError} />
      {formError && (
        <p className="field-error" role="alert">
          {formError}
        </p>
      )}
      {importProblems && <ImportProblems failure={importProblems} />}

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
        <>
          <input
            type="search"
            className="list-search"
            aria-label="Search pipelines by title"
            placeholder="Search by title"
            value={search}
            onChange={(e) => setSearch(e.target.value)}
            data-testid="pipeline-search"
          />
          {shown.length > 0 ? (
            <PipelineTable pipelines={shown} rename={rename} remove={remove} />
          ) : (
            <p className="muted" data-testid="no-matches">
              No pipeline title matches “{search.trim()}”.
            </p>
          )}
        </>
      )}
    </main>
  );
}

/**
 * The listed pipelines, kept current by this page's own renames and deletes. While the gateway is unreachable
 * the list keeps trying; the page recovers by itself when it is back. A refused rename or delete says why.
 */
function usePipelines(api: Api, setFormError: (message: string | null) => void) {
  const [pipelines, setPipelines] = useState<ListedPipeline[]>([]);
  const [load, setLoad] = useState<Load>({ phase: "loading" });

  const refresh = useCallback(async () => {
    try {
      const { pipelines } = await api.listPipelines(1, 100);
      setPipelines(sortPipelines(pipelines));
      setLoad({ phase: "ready" });
    } catch (error) {
      const unreachable = error instanceof ApiError && error.unreachable;
      setLoad({ phase: "error", error: error as Error, retryAt: unreachable ? Date.now() + RETRY_MS : undefined });
    }
  }, [api]);
  useEffect(() => {
    void refresh();
  }, [refresh]);
  useEffect(() => {
    if (load.phase !== "error" || !load.retryAt) return;
    const timer = setTimeout(() => void refresh(), Math.max(0, load.retryAt - Date.now()));
    return () => clearTimeout(timer);
  }, [load, refresh]);

  async function rename(id: string, next: string): Promise<boolean> {
    const checked = checkTitle(next);
    if (!checked.ok) {
      setFormError(checked.error);
      return false;
    }
    try {
      const { pipeline } = await api.renamePipeline(id, checked.title);
      // The renamed row takes its place in the gateway's order (it was just updated).
      setPipelines((list) => sortPipelines(list.map((p) => (p.id === id ? { ...p, ...pipeline } : p))));
      setFormError(null);
      return true;
    } catch (error) {
      setFormError(errorMessage(error));
      return false;
    }
  }

  async function remove(id: string): Promise<boolean> {
    try {
      await api.deletePipeline(id);
      setPipelines((list) => list.filter((p) => p.id !== id));
      return true;
    } catch (error) {
      setFormError(errorMessage(error));
      return false;
    }
  }
  return { pipelines, load, refresh, rename, remove };
}

/** Importing a pipeline JSON file: opens the new pipeline, or lists why the file was refused. */
function useImport(api: Api) {
  const router = useRouter();
  const [importProblems, setImportProblems] = useState<ImportFailure | null>(null);
  async function importFile(file: File) {
    setImportProblems(null);
    const parsed = await readImport(file);
    if (!parsed.ok) {
      setImportProblems(parsed.failure);
      return;
    }
    try {
      const { pipeline } = await api.importPipeline(parsed.document);
      router.push(`/pipelines/${pipeline.id}`);
    } catch (error) {
      setImportProblems(importFailure(file.name, error));
    }
  }
  return { importProblems, importFile };
}

function ListHeader({ onImport }: { onImport: (file: File) => void }) {
  const fileInput = useRef<HTMLInputElement>(null);
  const { canEdit, reason } = useCanEdit();
  return (
    <header className="page-header">
      <div>
        <h1>Video pipelines</h1>
        <p className="muted">Draw a graph of video steps, press play, watch every node run live.</p>
      </div>
      <div className="row">
        <ThemeSwitch />
        <button
          type="button"
          className="button secondary"
          disabled={!canEdit}
          title={reason}
          onClick={() => fileInput.current?.click()}
          data-testid="import-button"
        >
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
            if (file) onImport(file);
          }}
        />
      </div>
    </header>
  );
}

/** A new pipeline by title; it opens once created. */
function CreateForm({ api, setFormError }: { api: Api; setFormError: (message: string | null) => void }) {
  const router = useRouter();
  const [title, setTitle] = useState("");
  const [busy, setBusy] = useState(false);
  const { canEdit, reason } = useCanEdit();
  async function create(event: FormEvent) {
    event.preventDefault();
    const checked = checkTitle(title);
    if (!checked.ok) {
      setFormError(checked.error);
      return;
    }
    setBusy(true);
    try {
      const { pipeline } = await api.createPipeline(checked.title);
      router.push(`/pipelines/${pipeline.id}`);
    } catch (error) {
      setFormError(errorMessage(error));
      setBusy(false);
    }
  }
  return (
    <form className="create-form" onSubmit={create}>
      <input
        aria-label="New pipeline title"
        placeholder="New pipeline title, e.g. Episode 12 intro"
        value={title}
        onChange={(e) => {
          setTitle(e.target.value);
          setFormError(null);
        }}
        disabled={!canEdit}
        title={reason}
        data-testid="new-pipeline-title"
      />
      <button type="submit" className="button" disabled={busy || !canEdit} title={reason} data-testid="create-pipeline">
        Create pipeline
      </button>
    </form>
  );
}

function ImportProblems({ failure }: { failure: ImportFailure }) {
  return (
    <div className="problems" role="alert" data-testid="import-problems">
      <strong>{failure.message}</strong>
      {failure.problems.length > 0 && (
        <ul>
          {failure.problems.map((p, i) => (
            <li key={i}>{p}</li>
          ))}
        </ul>
      )}
    </div>
  );
}
