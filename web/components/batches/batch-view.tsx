"use client";

import Link from "next/link";
import { useCallback, useEffect, useMemo, useRef, useState, type DragEvent } from "react";
import { outputMediaType, type MediaType, type Variable } from "@vp/contracts";
import {
  ApiError,
  errorMessage,
  type ApiNode,
  type Batch,
  type BatchEstimate,
  type BatchRequest,
  type BatchRow,
  type BatchRowProblem,
  type BatchRowStatus,
} from "@/lib/api";
import { batchRowsOf, parseCsv, type CsvTable } from "@/lib/csv";
import { exactCost, formatCost, formatWhen } from "@/lib/format";
import { useAccount } from "../account";
import { useApi } from "../gateway";
import { ErrorState, LoadingState } from "../states";
import { ThemeSwitch } from "../theme-switch";
import { useLiveBatch } from "./use-batch";
import "../editor/editing.css";
import "./batches.css";

const STATUSES: BatchRowStatus[] = ["waiting", "running", "completed", "failed", "cancelled"];
/** The node status whose badge a row's status wears. */
const BADGE: Record<BatchRowStatus, string> = { waiting: "pending", running: "in_progress", completed: "completed", failed: "failed", cancelled: "cancelled" };
/** Rows drawn at once; a larger batch shows more on demand (the counts and filters cover all of them). */
const PAGE = 200;

interface Template {
  title: string;
  variables: Variable[];
  nodes: ApiNode[];
}

/**
 * A pipeline's batches: a CSV of variable values (one row per video) checked and priced before it starts, the live
 * table of a batch's rows (status, cost, each finished row's video and download), and the earlier batches. Users
 * without the operator role see all of it without the controls.
 */
export function BatchView({ pipelineId }: { pipelineId: string }) {
  const api = useApi();
  const { canEdit, reason } = useCanRunBatches();
  const [template, setTemplate] = useState<Template | null>(null);
  const [loadError, setLoadError] = useState<unknown>(null);
  const [batches, setBatches] = useState<Batch[] | null>(null);
  const [selected, setSelected] = useState<string | null>(null);

  const load = useCallback(async () => {
    try {
      const { pipeline } = await api.getPipeline(pipelineId);
      setTemplate({ title: pipeline.title, variables: pipeline.variables ?? [], nodes: pipeline.nodes });
      setLoadError(null);
    } catch (e) {
      setLoadError(e);
    }
  }, [api, pipelineId]);
  const loadBatches = useCallback(async () => {
    try {
      const { batches: list } = await api.listBatches(pipelineId);
      setBatches(list);
      setSelected((current) => current ?? list[0]?.id ?? null);
    } catch {
      setBatches((current) => current ?? []);
    }
  }, [api, pipelineId]);
  useEffect(() => {
    void load();
    void loadBatches();
  }, [load, loadBatches]);

  if (loadError) {
    const notFound = loadError instanceof ApiError && loadError.status === 404;
    return (
      <main className="page">
        <ErrorState
          title={notFound ? "Pipeline not found" : "Could not load the pipeline"}
          message={errorMessage(loadError)}
          onRetry={notFound ? undefined : () => void load()}
        />
      </main>
    );
  }
  if (!template) {
    return (
      <main className="page">
        <LoadingState label="Loading batches…" />
      </main>
    );
  }
  return (
    <div className="batches-page">
      <header className="editor-header">
        <Link href={`/pipelines/${encodeURIComponent(pipelineId)}`} className="back-link" data-testid="back-to-editor">
          ← Editor
        </Link>
        <h1 className="editor-title" title={template.title}>
          Batches · {template.title}
        </h1>
        <ThemeSwitch />
      </header>
      <main className="batches-main">
        {canEdit ? (
          <NewBatch
            pipelineId={pipelineId}
            template={template}
            onStarted={(batch) => {
              setBatches((list) => [batch, ...(list ?? []).filter((b) => b.id !== batch.id)]);
              setSelected(batch.id);
            }}
          />
        ) : (
          <p className="muted small read-only-note" data-testid="batches-read-only">
            {reason} You can follow the batches and download their videos.
          </p>
        )}
        {selected && <BatchDetail key={selected} batchId={selected} template={template} canEdit={canEdit} onChanged={loadBatches} />}
        <BatchList batches={batches} selected={selected} onSelect={setSelected} />
      </main>
    </div>
  );
}

/**
 * Whether the user may start, cancel and retry batches (the gateway's operator role: a batch runs work); with the dev
 * login always. Anyone else sees the batches and their results without those controls.
 */
function useCanRunBatches(): { canEdit: boolean; reason?: string } {
  const state = useAccount();
  if (state.status !== "signed-in" || state.account.roles.includes("operator")) return { canEdit: true };
  return {
    canEdit: false,
    reason: `Starting, cancelling and retrying batches needs the operator role; your roles: ${state.account.roles.join(", ") || "none"}.`,
  };
}

type Check =
  | { phase: "idle" }
  | { phase: "checking" }
  | { phase: "ok"; estimate: BatchEstimate }
  | { phase: "refused"; message: string; problems: BatchRowProblem[] };

/** A CSV dropped or chosen, parsed and checked by the gateway (dry run: problems by row and column, or the estimate); Start. */
function NewBatch({ pipelineId, template, onStarted }: { pipelineId: string; template: Template; onStarted(batch: Batch): void }) {
  const api = useApi();
  const input = useRef<HTMLInputElement>(null);
  const [over, setOver] = useState(false);
  const [file, setFile] = useState<string | null>(null);
  const [table, setTable] = useState<CsvTable | null>(null);
  const [parseError, setParseError] = useState<string | null>(null);
  const [check, setCheck] = useState<Check>({ phase: "idle" });
  const [concurrency, setConcurrency] = useState(4);
  const [budget, setBudget] = useState("");
  const [starting, setStarting] = useState(false);
  const [startError, setStartError] = useState<string | null>(null);

  const request = useMemo((): BatchRequest | null => {
    if (!table) return null;
    const maxCost = budget.trim() === "" ? undefined : Number(budget);
    return {
      rows: batchRowsOf(table, template.variables),
      concurrency,
      ...(maxCost !== undefined && Number.isFinite(maxCost) ? { maxCost } : {}),
    };
  }, [table, template.variables, concurrency, budget]);

  // Checked again whenever the rows or the settings change.
  useEffect(() => {
    if (!request) return setCheck({ phase: "idle" });
    let cancelled = false;
    setCheck({ phase: "checking" });
    setStartError(null);
    const timer = setTimeout(() => {
      api.checkBatch(pipelineId, request).then(
        (answer) => !cancelled && setCheck({ phase: "ok", estimate: answer.estimate }),
        (e: unknown) => {
          if (cancelled) return;
          const problems = e instanceof ApiError ? (((e.body as { problems?: BatchRowProblem[] } | undefined)?.problems ?? []) as BatchRowProblem[]) : [];
          setCheck({ phase: "refused", message: errorMessage(e), problems: problems.filter((p) => p && typeof p === "object" && "message" in p) });
        },
      );
    }, 250);
    return () => {
      cancelled = true;
      clearTimeout(timer);
    };
  }, [api, pipelineId, request]);

  const read = async (chosen: File) => {
    setFile(chosen.name);
    setStartError(null);
    try {
      const parsed = parseCsv(await chosen.text());
      if (parsed.header.length === 0) throw new Error("the file is empty");
      setTable(parsed);
      setParseError(null);
    } catch (e) {
      setTable(null);
      setParseError(`Not a CSV we can read: ${errorMessage(e)}`);
    }
  };
  const onDrop = (event: DragEvent) => {
    event.preventDefault();
    setOver(false);
    const dropped = event.dataTransfer.files?.[0];
    if (dropped) void read(dropped);
  };
  const start = async () => {
    if (!request) return;
    setStarting(true);
    setStartError(null);
    try {
      const { batch } = await api.startBatch(pipelineId, request);
      onStarted(batch);
      setTable(null);
      setFile(null);
    } catch (e) {
      setStartError(`Not started: ${errorMessage(e)}`);
    } finally {
      setStarting(false);
    }
  };

  const known = new Set(template.variables.map((v) => v.name));
  return (
    <section className="batch-card" aria-label="New batch" data-testid="new-batch">
      <h2>New batch</h2>
      <p className="muted small">
        One video per row of a CSV whose header names the pipeline&apos;s variables
        {template.variables.length ? (
          <>
            {" "}
            (
            {template.variables.map((v, i) => (
              <span key={v.name}>
                {i > 0 && ", "}
                <code>{v.name}</code>
              </span>
            ))}
            ). An empty cell uses the variable&apos;s default; a media variable takes a URL.
          </>
        ) : (
          ": this pipeline has none yet (declare them in the editor's Variables)."
        )}
      </p>
      <div
        className={`asset-box dropzone batch-dropzone${over ? " over" : ""}`}
        onDragOver={(e) => {
          e.preventDefault();
          setOver(true);
        }}
        onDragLeave={() => setOver(false)}
        onDrop={onDrop}
        onClick={() => input.current?.click()}
        onKeyDown={(e) => (e.key === "Enter" || e.key === " ") && input.current?.click()}
        role="button"
        tabIndex={0}
        data-testid="batch-dropzone"
      >
        <span className="small">
          {file ? (
            `${file}: drop or choose another`
          ) : (
            <>
              Drop a CSV file or <u>choose one</u>
            </>
          )}
        </span>
        <input
          ref={input}
          type="file"
          hidden
          accept=".csv,text/csv"
          data-testid="batch-file-input"
          onChange={(e) => {
            const chosen = e.target.files?.[0];
            e.target.value = "";
            if (chosen) void read(chosen);
          }}
        />
      </div>
      {parseError && (
        <p className="node-error full" role="alert">
          {parseError}
        </p>
      )}
      {table && (
        <>
          <p className="small" data-testid="batch-parsed">
            {table.rows.length} row{table.rows.length === 1 ? "" : "s"}, columns{" "}
            {table.header.map((h, i) => (
              <span
                key={`${h}-${i}`}
                className={`column-name${known.has(h) ? "" : " unknown"}`}
                title={known.has(h) ? undefined : "Not a variable of this pipeline"}
              >
                {h || "(empty)"}
              </span>
            ))}
          </p>
          <CsvPreview table={table} problems={check.phase === "refused" ? check.problems : []} />
        </>
      )}
      {check.phase === "checking" && <p className="muted small">Checking the rows…</p>}
      {check.phase === "refused" && <Problems message={check.message} problems={check.problems} />}
      {check.phase === "ok" && <EstimateSummary estimate={check.estimate} />}
      {table && (
        <div className="row batch-settings">
          <label className="small">
            Rows at once{" "}
            <input
              type="number"
              min={1}
              max={16}
              value={concurrency}
              onChange={(e) => setConcurrency(Math.min(16, Math.max(1, Math.round(Number(e.target.value) || 1))))}
              data-testid="batch-concurrency"
            />
          </label>
          <label className="small">
            Budget ${" "}
            <input type="number" min={0} step="0.01" placeholder="none" value={budget} onChange={(e) => setBudget(e.target.value)} data-testid="batch-budget" />
          </label>
          <button
            type="button"
            className="button"
            disabled={check.phase !== "ok" || starting}
            title={check.phase === "refused" ? "Fix the problems listed first" : undefined}
            onClick={() => void start()}
            data-testid="batch-start"
          >
            {starting ? "Starting…" : `Start ${table.rows.length} video${table.rows.length === 1 ? "" : "s"}`}
          </button>
        </div>
      )}
      {startError && (
        <p className="node-error full" role="alert" data-testid="batch-start-error">
          {startError}
        </p>
      )}
    </section>
  );
}

/** The CSV's first rows, a cell with a problem marked. */
function CsvPreview({ table, problems }: { table: CsvTable; problems: BatchRowProblem[] }) {
  const bad = new Set(problems.map((p) => `${p.row}\u0000${p.column}`));
  const shown = table.rows.slice(0, 10);
  return (
    <div className="batch-table-wrap">
      <table className="batch-table csv-preview" data-testid="batch-preview">
        <thead>
          <tr>
            <th>#</th>
            {table.header.map((h, i) => (
              <th key={`${h}-${i}`}>{h}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {shown.map((cells, r) => (
            <tr key={r}>
              <td className="muted">{r + 1}</td>
              {table.header.map((h, c) => (
                <td key={c} className={bad.has(`${r + 1}\u0000${h}`) ? "cell-problem" : undefined}>
                  {cells[c] ?? ""}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
      {table.rows.length > shown.length && <p className="muted small">…and {table.rows.length - shown.length} more rows</p>}
    </div>
  );
}

function Problems({ message, problems }: { message: string; problems: BatchRowProblem[] }) {
  return (
    <div className="node-error full" role="alert" data-testid="batch-problems">
      <strong>{problems.length ? `${problems.length} problem${problems.length === 1 ? "" : "s"} to fix before starting` : message}</strong>
      {problems.length > 0 && (
        <table className="problem-table">
          <thead>
            <tr>
              <th>Row</th>
              <th>Column</th>
              <th>Problem</th>
            </tr>
          </thead>
          <tbody>
            {problems.map((p, i) => (
              <tr key={i} data-testid="batch-problem" data-row={p.row} data-column={p.column}>
                <td>{p.row}</td>
                <td className="mono">{p.column}</td>
                <td>{p.message}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

function EstimateSummary({ estimate }: { estimate: BatchEstimate }) {
  return (
    <div className="estimate-strip batch-estimate" data-testid="batch-estimate">
      <span>
        Estimated{" "}
        <strong data-testid="batch-estimate-total" title={exactCost(estimate.total)}>
          {formatCost(estimate.total)}
        </strong>{" "}
        for {estimate.rows} row{estimate.rows === 1 ? "" : "s"}
      </span>
      <span className="muted" data-testid="batch-estimate-split">
        shared work {formatCost(estimate.shared)} (made once) + {formatCost(estimate.perRow)} per row
      </span>
      <span className="muted" data-testid="batch-estimate-saved">
        sharing saves {formatCost(estimate.saved)}
      </span>
    </div>
  );
}

/** One batch, live: its counts and cost, the row table (filter by status), Retry failed, Cancel, the zip of its videos. */
function BatchDetail({
  batchId,
  template,
  canEdit,
  onChanged,
}: {
  batchId: string;
  template: Template;
  canEdit: boolean;
  /** Reloads the list of batches (a stable function: the list follows when this batch ends). */
  onChanged(): Promise<void>;
}) {
  const api = useApi();
  const { batch, rows, error, live, reload } = useLiveBatch(api, batchId);
  const [filter, setFilter] = useState<BatchRowStatus | "all">("all");
  const [limit, setLimit] = useState(PAGE);
  const [busy, setBusy] = useState<string | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);
  const finished = batch?.status !== undefined && batch.status !== "running";
  // The list's status and counts follow once the batch ends.
  useEffect(() => {
    if (finished) void onChanged();
  }, [finished, onChanged]);

  const act = async (name: string, action: () => Promise<unknown>) => {
    setBusy(name);
    setActionError(null);
    try {
      await action();
      await reload();
      await onChanged();
    } catch (e) {
      setActionError(errorMessage(e));
    } finally {
      setBusy(null);
    }
  };
  const downloadZip = async () => {
    setBusy("zip");
    setActionError(null);
    try {
      const blob = await api.batchOutputsZip(batchId);
      const url = URL.createObjectURL(blob);
      const a = document.createElement("a");
      a.href = url;
      a.download = `batch-${batchId}.zip`;
      a.click();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (e) {
      setActionError(`No zip: ${errorMessage(e)}`);
    } finally {
      setBusy(null);
    }
  };

  if (error && !batch) return <p className="node-error full">{error}</p>;
  if (!batch) return <LoadingState label="Loading the batch…" />;
  const counts = batch.counts;
  const outputNode = template.nodes.find((n) => n.id === (rows.find((r) => r.output)?.output?.nodeId ?? ""));
  const media = outputNode ? outputMediaType(outputNode.type, outputNode.asset as { type?: MediaType } | null) : undefined;
  const shown = filter === "all" ? rows : rows.filter((r) => r.status === filter);
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r.values)))];
  return (
    <section className="batch-card" aria-label="Batch" data-testid="batch-detail" data-batch-id={batch.id} data-status={batch.status}>
      <div className="batch-head">
        <h2>
          Batch of {rows.length || Object.values(counts).reduce((a, b) => a + b, 0)} ·{" "}
          <span className={`batch-status ${batch.status}`} data-testid="batch-status">
            {batch.status}
          </span>
        </h2>
        <span className={`live-indicator ${live ? "live" : "connecting"}`} data-testid="batch-live">
          <span className="badge-dot" aria-hidden />
          {live ? "Live" : "Connecting…"}
        </span>
      </div>
      <p className="small" data-testid="batch-summary">
        {STATUSES.filter((s) => counts[s])
          .map((s) => `${counts[s]} ${s}`)
          .join(" · ") || "no rows"}{" "}
        · cost <strong title={exactCost(batch.cost)}>{formatCost(batch.cost)}</strong>
        {batch.costSaved > 0 && <> · saved {formatCost(batch.costSaved)}</>} · started {formatWhen(batch.createdAt)}
        {batch.finishedAt && <> · finished {formatWhen(batch.finishedAt)}</>}
      </p>
      <div className="row batch-actions">
        <div className="batch-filter" role="group" aria-label="Show rows">
          {(["all", ...STATUSES] as const).map((s) => (
            <button
              key={s}
              type="button"
              className={`chip-button${filter === s ? " selected" : ""}`}
              aria-pressed={filter === s}
              onClick={() => {
                setFilter(s);
                setLimit(PAGE);
              }}
              data-testid={`batch-filter-${s}`}
            >
              {s} {s === "all" ? rows.length : counts[s]}
            </button>
          ))}
        </div>
        {canEdit && (
          <>
            {batch.status === "running" && (
              <button
                type="button"
                className="button small danger"
                disabled={busy !== null}
                onClick={() => void act("cancel", () => api.cancelBatch(batchId))}
                data-testid="batch-cancel"
              >
                Cancel batch
              </button>
            )}
            {counts.failed + counts.cancelled > 0 && (
              <button
                type="button"
                className="button small"
                disabled={busy !== null}
                onClick={() => void act("retry", () => api.retryBatch(batchId))}
                data-testid="batch-retry"
              >
                Retry failed ({counts.failed + counts.cancelled})
              </button>
            )}
          </>
        )}
        {counts.completed > 0 && (
          <button type="button" className="button secondary small" disabled={busy !== null} onClick={() => void downloadZip()} data-testid="batch-zip">
            {busy === "zip" ? "Preparing…" : "Download all (zip)"}
          </button>
        )}
      </div>
      {actionError && (
        <p className="node-error full" role="alert">
          {actionError}
        </p>
      )}
      <div className="batch-table-wrap">
        <table className="batch-table" data-testid="batch-table">
          <thead>
            <tr>
              <th>#</th>
              {columns.map((c) => (
                <th key={c}>{c}</th>
              ))}
              <th>Status</th>
              <th>Cost</th>
              <th>Result</th>
              {canEdit && <th />}
            </tr>
          </thead>
          <tbody>
            {shown.slice(0, limit).map((row) => (
              <RowLine
                key={row.index}
                row={row}
                columns={columns}
                media={media}
                gatewayUrl={api.gatewayUrl}
                onCancel={canEdit ? () => void act(`row-${row.index}`, () => api.cancelBatchRow(batchId, row.index)) : undefined}
                busy={busy !== null}
              />
            ))}
          </tbody>
        </table>
        {shown.length > limit && (
          <button type="button" className="link-button" onClick={() => setLimit(limit + PAGE)}>
            Show {Math.min(PAGE, shown.length - limit)} more of {shown.length - limit}
          </button>
        )}
        {shown.length === 0 && <p className="muted small">No {filter === "all" ? "" : `${filter} `}rows.</p>}
      </div>
    </section>
  );
}

function RowLine({
  row,
  columns,
  media,
  gatewayUrl,
  onCancel,
  busy,
}: {
  row: BatchRow;
  columns: string[];
  media: MediaType | undefined;
  gatewayUrl: string;
  onCancel?: () => void;
  busy: boolean;
}) {
  const url = row.output ? `${gatewayUrl.replace(/\/+$/, "")}${row.output.url}` : null;
  return (
    <tr data-testid="batch-row" data-index={row.index} data-status={row.status}>
      <td className="muted">{row.index}</td>
      {columns.map((c) => (
        <td key={c} className="batch-value" title={String(row.values[c] ?? "")}>
          {String(row.values[c] ?? "")}
        </td>
      ))}
      <td>
        <span className={`badge status-${BADGE[row.status]}`} data-testid="batch-row-status">
          <span className="badge-dot" aria-hidden />
          {row.status}
        </span>
        {row.error && (
          <div className="field-error" data-testid="batch-row-error">
            {row.error}
          </div>
        )}
      </td>
      <td title={row.cost === null ? undefined : exactCost(row.cost)}>{row.cost === null ? "" : formatCost(row.cost)}</td>
      <td>
        {row.status === "completed" && url && (
          <div className="batch-result">
            {media === "audio" ? (
              <audio src={url} controls preload="none" data-testid="batch-row-preview" />
            ) : media === "image" ? (
              // eslint-disable-next-line @next/next/no-img-element
              <img src={url} alt={`Row ${row.index}`} className="batch-thumb" data-testid="batch-row-preview" />
            ) : (
              <video src={`${url}#t=0.5`} className="batch-thumb" controls preload="metadata" playsInline muted data-testid="batch-row-preview" />
            )}
            <a className="link-button" href={url} download data-testid="batch-row-download">
              Download
            </a>
          </div>
        )}
      </td>
      {onCancel && (
        <td>
          {(row.status === "waiting" || row.status === "running") && (
            <button
              type="button"
              className="icon-button"
              aria-label={`Cancel row ${row.index}`}
              disabled={busy}
              onClick={onCancel}
              data-testid="batch-row-cancel"
            >
              ■
            </button>
          )}
        </td>
      )}
    </tr>
  );
}

function BatchList({ batches, selected, onSelect }: { batches: Batch[] | null; selected: string | null; onSelect(id: string): void }) {
  return (
    <section className="batch-card" aria-label="Earlier batches" data-testid="batch-list">
      <h2>Batches</h2>
      {batches === null && <p className="muted small">Loading…</p>}
      {batches?.length === 0 && <p className="muted small">No batches yet.</p>}
      <ol className="version-list">
        {batches?.map((b) => {
          const total = Object.values(b.counts ?? {}).reduce((sum, n) => sum + n, 0);
          return (
            <li key={b.id}>
              <button
                type="button"
                className={`version-item${selected === b.id ? " selected" : ""}`}
                onClick={() => onSelect(b.id)}
                data-testid="batch-list-item"
                data-batch-id={b.id}
              >
                <span className="version-summary">
                  {total} row{total === 1 ? "" : "s"} · <span className={`batch-status ${b.status}`}>{b.status}</span>
                </span>
                <span className="muted small">
                  {b.counts?.completed ?? 0} completed{b.counts?.failed ? ` · ${b.counts.failed} failed` : ""} · {formatCost(b.cost ?? 0)} ·{" "}
                  {formatWhen(b.createdAt)}
                </span>
              </button>
            </li>
          );
        })}
      </ol>
    </section>
  );
}
