import type {
  DocumentNode,
  GraphProblem,
  NodePosition,
  NodeType,
  PipelineDocument,
  RunEstimate,
  RunRecord,
  SerializedNode,
  SerializedPipeline,
  Variable,
} from "@vp/contracts";
import { ApiError } from "./api-error";
import { assetUploader } from "./asset-upload";
import { createAuth, SignInUnreachableError, type Auth } from "./auth";

export { ApiError } from "./api-error";

/** A node as the API serializes it, with the editor's canvas position. */
export type ApiNode = SerializedNode & { position?: NodePosition | null };

/** The fields of a node PATCH the editor writes (config is a JSON merge patch: null removes a key). */
export interface StructurePatch {
  title?: string;
  inputs?: Record<string, string[]>;
  config?: Record<string, unknown>;
  /** `variable`: the media variable a media asset is bound to (null unbinds). */
  asset?: { type?: string; content?: string; variable?: string | null };
  position?: NodePosition;
  disabled?: boolean;
}

/** What POST …/nodes takes: a new node's structure (the pipeline document's node shape, or less). */
export type NewNodeBody = Pick<DocumentNode, "id" | "title" | "type"> &
  Partial<Omit<DocumentNode, "id" | "title" | "type" | "asset">> & { asset?: { type: string; content?: string; url?: string } };

export interface NodeCounts {
  total: number;
  pending: number;
  queued: number;
  in_progress: number;
  completed: number;
  failed: number;
  cancelled: number;
}

/** 200 (started, with the estimate once the scheduler reports it) or 202 (accepted; the verdict was late). */
export type RunStarted = { status: "running"; run_id: string; node_ids: string[]; estimate?: RunEstimate } | { status: "accepted"; run_id: string };
export type CancelAnswer = { status: "cancelled"; cancelled: string[] } | { status: "accepted" };

export type ListedPipeline = SerializedPipeline & { node_counts?: NodeCounts };

/** One structure revision of a pipeline (GET …/revisions). */
export interface RevisionEntry {
  revision: number;
  created_at: string;
  created_by: string;
  summary: string;
}

/** A node's structure as a revision recorded it. */
export type RevisionNode = Pick<ApiNode, "id" | "title" | "type" | "inputs" | "config" | "asset" | "position" | "disabled">;

/** The pipeline as it was right after one revision (GET …/revisions/:revision). */
export interface RevisionDetail {
  revision: RevisionEntry | { revision: number };
  current: number;
  pipeline: { title: string; config: Record<string, unknown> };
  nodes: RevisionNode[];
  changes: {
    pipeline?: { before: { title: string }; after: { title: string } };
    nodes: Array<{ id: string; before: RevisionNode | null; after: RevisionNode | null }>;
  } | null;
}

/** A write based on a node revision (If-Match): refused with 409 and the node as it is now when that changed since. */
export interface WriteCondition {
  ifRevision?: number;
}

/**
 * The gateway's HTTP API as the browser uses it. Every structure write goes through these validated
 * routes (the one write path); nothing in the editor writes execution state.
 */
export function createApi(gatewayUrl: string, auth: Auth = createAuth(gatewayUrl)) {
  const root = `${gatewayUrl.replace(/\/+$/, "")}/v1/video_production`;
  // This page's id on every write (X-Vp-Client): the gateway names it in the structure events the write causes, so
  // the page knows which changes on its event stream are its own.
  const clientId = newClientId();
  const { request, bearer } = createTransport(root, gatewayUrl, auth, { "x-vp-client": clientId });

  return {
    root,
    gatewayUrl,
    clientId,
    ...pipelineRoutes(request),
    ...nodeRoutes(request),
    ...revisionRoutes(request),
    ...runRoutes(request),
    ...variableRoutes(request),
    ...batchRoutes(root, request, bearer),

    /** A node's output; `file` names one of its further files (output.files: a captions node's vtt, srt). */
    outputUrl: (pipelineId: string, nodeId: string, version?: string, file?: string) => {
      const query = new URLSearchParams();
      if (version) query.set("v", version);
      if (file) query.set("file", file);
      const text = query.toString();
      return `${root}${nodePath(pipelineId, nodeId)}/output${text ? `?${text}` : ""}`;
    },
    /** An asset node's uploaded file (its thumbnail and duration in the editor); `version` names the upload (its key). */
    assetUrl: (pipelineId: string, nodeId: string, version?: string) =>
      `${root}${nodePath(pipelineId, nodeId)}/asset${version ? `?${new URLSearchParams({ v: version })}` : ""}`,
    ...streamRoutes(root, request),
    uploadAsset: assetUploader({ root, gatewayUrl, request, bearer, nodePath, clientId }),
  };
}

function newClientId(): string {
  return typeof crypto !== "undefined" && "randomUUID" in crypto ? crypto.randomUUID() : `c${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;
}

/** A JSON call to the gateway's API under its root: the answer's body, or an ApiError with the reason to show. */
export type Request = <T>(method: string, path: string, body?: unknown, headers?: Record<string, string>) => Promise<T>;
export type Bearer = () => Promise<Record<string, string>>;

/** Calls with the signed-in token; after a 401 (the token expired, the gateway's key changed) it signs in again once. */
function createTransport(root: string, gatewayUrl: string, auth: Auth, fixedHeaders: Record<string, string> = {}): { request: Request; bearer: Bearer } {
  async function bearer(): Promise<Record<string, string>> {
    try {
      const token = await auth.token();
      return token ? { authorization: `Bearer ${token}` } : {};
    } catch (error) {
      if (error instanceof SignInUnreachableError) throw new ApiError(0, error.message);
      throw error;
    }
  }

  async function request<T>(method: string, path: string, body?: unknown, extraHeaders: Record<string, string> = {}, retried = false): Promise<T> {
    let response: Response;
    const authorization = await bearer();
    const headers = { ...(method === "GET" ? {} : fixedHeaders), ...extraHeaders, ...authorization };
    try {
      response = await fetch(`${root}${path}`, {
        method,
        headers: body === undefined ? headers : { ...headers, "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
      });
    } catch (error) {
      throw new ApiError(0, `Cannot reach the gateway at ${gatewayUrl} (${(error as Error).message}). Is it running?`);
    }
    if (response.status === 401 && authorization.authorization && !retried) {
      auth.invalidate();
      return request<T>(method, path, body, extraHeaders, true);
    }
    return readAnswer<T>(response);
  }

  return { request: <T>(method: string, path: string, body?: unknown, headers?: Record<string, string>) => request<T>(method, path, body, headers), bearer };
}

/** The JSON body of an answer; a failed one becomes an ApiError with the gateway's message and listed problems. */
async function readAnswer<T>(response: Response): Promise<T> {
  const text = await response.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (!response.ok) {
    const payload = json as { error?: string; problems?: ApiError["problems"] } | undefined;
    throw new ApiError(response.status, payload?.error ?? `The gateway answered ${response.status} ${response.statusText}`, payload?.problems, json);
  }
  return json as T;
}

const pipelinePath = (pipelineId: string) => `/pipelines/${encodeURIComponent(pipelineId)}`;
const nodePath = (pipelineId: string, nodeId?: string) =>
  `/pipelines/${encodeURIComponent(pipelineId)}/nodes${nodeId === undefined ? "" : `/${encodeURIComponent(nodeId)}`}`;

/** Pipelines: list, read, create, rename, delete, export and import. */
function pipelineRoutes(request: Request) {
  return {
    listPipelines: (page = 1, per = 50) =>
      request<{ pipelines: ListedPipeline[]; meta: { current_page: number; total_pages: number; total_count: number } }>(
        "GET",
        `/pipelines?page=${page}&per=${per}`,
      ),
    getPipeline: (id: string) => request<{ pipeline: SerializedPipeline & { nodes: ApiNode[] } }>("GET", pipelinePath(id)),
    createPipeline: (title: string) => request<{ pipeline: SerializedPipeline }>("POST", "/pipelines", { title }),
    renamePipeline: (id: string, title: string) => request<{ pipeline: SerializedPipeline }>("PATCH", pipelinePath(id), { title }),
    deletePipeline: (id: string) => request<void>("DELETE", pipelinePath(id)),
    exportPipeline: (id: string) => request<PipelineDocument>("GET", `${pipelinePath(id)}/export`),
    importPipeline: (document: unknown) => request<{ pipeline: SerializedPipeline & { nodes: ApiNode[] } }>("POST", "/pipelines/import", document),
  };
}

/** Nodes: create, update (structure and position), delete, execute one. */
function nodeRoutes(request: Request) {
  return {
    createNode: (pipelineId: string, node: NewNodeBody) => request<{ node: ApiNode }>("POST", nodePath(pipelineId), node),
    updateNode: (pipelineId: string, nodeId: string, patch: StructurePatch, condition: WriteCondition = {}) =>
      request<{ node: ApiNode }>("PATCH", nodePath(pipelineId, nodeId), patch, ifMatch(condition)),
    deleteNode: (pipelineId: string, nodeId: string, condition: WriteCondition = {}) =>
      request<void>("DELETE", nodePath(pipelineId, nodeId), undefined, ifMatch(condition)),
    executeNode: (pipelineId: string, nodeId: string) =>
      request<{ status: "queued" | "accepted"; job_id: string }>("POST", `${nodePath(pipelineId, nodeId)}/execute`),
  };
}

const ifMatch = ({ ifRevision }: WriteCondition): Record<string, string> => (ifRevision === undefined ? {} : { "if-match": `"${ifRevision}"` });

/** The pipeline's structure history: list, read one revision, restore one (a new revision). */
function revisionRoutes(request: Request) {
  return {
    listRevisions: (pipelineId: string, options: { limit?: number; before?: number } = {}) => {
      const query = new URLSearchParams({ limit: String(options.limit ?? 50), ...(options.before ? { before: String(options.before) } : {}) });
      return request<{ current: number; revisions: RevisionEntry[] }>("GET", `${pipelinePath(pipelineId)}/revisions?${query}`);
    },
    getRevision: (pipelineId: string, revision: number) => request<RevisionDetail>("GET", `${pipelinePath(pipelineId)}/revisions/${revision}`),
    restoreRevision: (pipelineId: string, revision: number) =>
      request<{ pipeline: SerializedPipeline & { nodes: ApiNode[] }; revision: number }>("POST", `${pipelinePath(pipelineId)}/revisions/${revision}/restore`),
  };
}

/** Runs: run all, run to here, retry, cancel, history, estimate, outdated results and budget. */
function runRoutes(request: Request) {
  return {
    runAll: (pipelineId: string, options: { force?: boolean } = {}) =>
      request<RunStarted>("POST", `${pipelinePath(pipelineId)}/execute`, options.force ? { force: true } : undefined),
    runToHere: (pipelineId: string, nodeId: string, options: { force?: boolean } = {}) =>
      request<RunStarted>("POST", `${nodePath(pipelineId, nodeId)}/execute`, { upstream: true, ...(options.force ? { force: true } : {}) }),
    retryNode: (pipelineId: string, nodeId: string, options: { downstream?: boolean; force?: boolean } = {}) =>
      request<RunStarted>("POST", `${nodePath(pipelineId, nodeId)}/retry`, {
        ...(options.downstream ? { downstream: true } : {}),
        ...(options.force ? { force: true } : {}),
      }),
    cancelPipeline: (pipelineId: string) => request<CancelAnswer>("POST", `${pipelinePath(pipelineId)}/cancel`),
    cancelNode: (pipelineId: string, nodeId: string) => request<CancelAnswer>("POST", `${nodePath(pipelineId, nodeId)}/cancel`),
    listRuns: (pipelineId: string, limit = 20) => request<{ runs: RunRecord[] }>("GET", `${pipelinePath(pipelineId)}/runs?limit=${limit}`),
    estimate: (pipelineId: string, options: { force?: boolean } = {}) =>
      request<{ estimate: RunEstimate; problems: GraphProblem[] }>("GET", `${pipelinePath(pipelineId)}/estimate${options.force ? "?force=true" : ""}`),
    /** Completed nodes whose result no longer matches the graph (config, asset or an input changed since). */
    outdated: (pipelineId: string) => request<{ node_ids: string[] }>("GET", `${pipelinePath(pipelineId)}/outdated`),
    setBudget: (pipelineId: string, maxCost: number | null) =>
      request<{ pipeline: SerializedPipeline }>("PATCH", pipelinePath(pipelineId), { config: { maxCost } }),
  };
}

/** The pipeline's variables: what changes from one video to the next (a batch row gives each its value). */
function variableRoutes(request: Request) {
  return {
    getVariables: (pipelineId: string) => request<{ variables: Variable[] }>("GET", `${pipelinePath(pipelineId)}/variables`),
    /** Replaces the declarations; 422 lists every problem (a declaration's path, or a node whose placeholders would not fit). */
    putVariables: (pipelineId: string, variables: Variable[]) =>
      request<{ variables: Variable[] }>("PUT", `${pipelinePath(pipelineId)}/variables`, { variables }),
  };
}

export type BatchRowStatus = "waiting" | "running" | "completed" | "failed" | "cancelled";
export type BatchCounts = Record<BatchRowStatus, number>;

/** What a batch costs before it starts: the work every row shares (made once), each row's own, and what sharing saves. */
export interface BatchEstimate {
  total: number;
  shared: number;
  perRow: number;
  rows: number;
  saved: number;
}

export interface BatchRow {
  index: number;
  values: Record<string, string | number>;
  status: BatchRowStatus;
  pipelineId: string | null;
  runId: string | null;
  cost: number | null;
  output: { url: string; nodeId: string } | null;
  error: string | null;
}

export interface Batch {
  id: string;
  pipelineId: string;
  status: "running" | "completed" | "failed" | "cancelled";
  concurrency: number;
  counts: BatchCounts;
  cost: number;
  costSaved: number;
  estimate: BatchEstimate | Record<string, never>;
  createdAt: string;
  finishedAt: string | null;
  rows?: BatchRow[];
}

/** What starting a batch takes: the rows' values by variable name (as a CSV's columns), and its limits. */
export interface BatchRequest {
  rows: Array<Record<string, string | number>>;
  concurrency?: number;
  maxCost?: number;
  outputNodeId?: string;
}

/** A problem of a batch's rows: which row (1-based) and column, and what is wrong. */
export interface BatchRowProblem {
  row: number;
  column: string;
  message: string;
}

/** Batches: a pipeline run once per row of variable values. */
function batchRoutes(root: string, request: Request, bearer: Bearer) {
  const batchPath = (batchId: string) => `/batches/${encodeURIComponent(batchId)}`;
  return {
    /** Checks the rows and prices the batch without starting it (422 lists the rows' problems). */
    checkBatch: (pipelineId: string, body: BatchRequest) =>
      request<{ rows: Array<{ index: number; values: Record<string, string | number> }>; estimate: BatchEstimate }>(
        "POST",
        `${pipelinePath(pipelineId)}/batches`,
        { ...body, dryRun: true },
      ),
    startBatch: (pipelineId: string, body: BatchRequest) => request<{ batch: Batch }>("POST", `${pipelinePath(pipelineId)}/batches`, body),
    listBatches: (pipelineId: string) => request<{ batches: Batch[] }>("GET", `${pipelinePath(pipelineId)}/batches`),
    getBatch: (batchId: string) => request<{ batch: Batch & { rows: BatchRow[] } }>("GET", batchPath(batchId)),
    cancelBatch: (batchId: string) => request<unknown>("POST", `${batchPath(batchId)}/cancel`),
    cancelBatchRow: (batchId: string, index: number) => request<unknown>("POST", `${batchPath(batchId)}/rows/${index}/cancel`),
    retryBatch: (batchId: string) => request<unknown>("POST", `${batchPath(batchId)}/retry`),
    /** Every completed row's output in one zip, fetched with the bearer token (a link cannot send it). */
    async batchOutputsZip(batchId: string): Promise<Blob> {
      const response = await fetch(`${root}${batchPath(batchId)}/outputs.zip`, { headers: await bearer(), cache: "no-store" });
      if (!response.ok) await readAnswer(response);
      return response.blob();
    },
    /** The URL to open a batch's row stream with: a fresh stream token, and the last event seen (see streamUrl). */
    async batchStreamUrl(batchId: string, lastEventId?: string): Promise<string> {
      const { token } = await request<{ token: string }>("POST", `${batchPath(batchId)}/events/token`);
      const query = new URLSearchParams({ token });
      if (lastEventId) query.set("lastEventId", lastEventId);
      return `${root}${batchPath(batchId)}/events?${query}`;
    },
  };
}

/** The pipeline's event stream (SSE). */
function streamRoutes(root: string, request: Request) {
  return {
    eventsUrl: (pipelineId: string) => `${root}${pipelinePath(pipelineId)}/events`,
    /**
     * The URL to open the event stream with: a fresh stream token (EventSource cannot send headers; the
     * token opens the stream within a minute), and the last event seen so the gateway replays what was missed.
     */
    async streamUrl(pipelineId: string, lastEventId?: string): Promise<string> {
      const { token } = await request<{ token: string }>("POST", `${pipelinePath(pipelineId)}/events/token`);
      const query = new URLSearchParams({ token });
      if (lastEventId) query.set("lastEventId", lastEventId);
      return `${root}${pipelinePath(pipelineId)}/events?${query}`;
    },
  };
}

export type Api = ReturnType<typeof createApi>;

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
