"use client";

import { useEffect, useMemo, useRef, useState } from "react";
import Link from "next/link";
import { ReactFlowProvider } from "@xyflow/react";
import { ApiError, errorMessage, type Api } from "@/lib/api";
import { blockedByDisabled } from "@vp/flow-graph";
import { typesTakingOutputOf } from "@/lib/node-edits";
import { graphLookup, statusCounts, totalCost, type EditorNode, type GraphAction, type GraphState } from "@/lib/graph-state";
import { usePipeline, type LiveStatus } from "@/lib/use-pipeline";
import { useCanEdit } from "../account";
import { useApi } from "../gateway";
import { ErrorState, LoadingState } from "../states";
import { EditorCanvas } from "./canvas";
import { NodeSearch, ShortcutSheet, useCommandDialogs } from "./command-dialogs";
import { EditorContext, type EditorContextValue } from "./context";
import { EditorHeader } from "./header";
import { NodePanel } from "./node-panel";
import { Palette } from "./palette";
import { RunBar } from "./run-controls";
import { RunHistory } from "./run-history";
import { Toasts, useToasts } from "./toasts";
import { useAutoLayout } from "./use-auto-layout";
import { useCanvasDrops } from "./use-canvas-drops";
import { useClipboard } from "./use-clipboard";
import { useConnections } from "./use-connections";
import { useExport } from "./use-export";
import { useFlowNodes } from "./use-flow-nodes";
import { useEscapeToDeselect } from "./use-keyboard";
import { useNodeCreation } from "./use-node-creation";
import { useNodeRemoval } from "./use-node-removal";
import { useOutdated } from "./use-outdated";
import { useUndo } from "./use-undo";
import { useExecute, usePositionSave, useUpdateNode, type WriteDeps } from "./use-node-writes";
import { useRuns } from "./use-runs";
import { useTextDrafts } from "./use-text-drafts";
import { useUpload } from "./use-upload";
import { useFitView, useRefitOn, useRevealSelected } from "./use-viewport";
import { VariablesPanel } from "./variables-panel";
import { VersionHistory } from "./version-history";
import "./editing.css";
import "./variables.css";

/** The pipeline page: loads the pipeline (with loading and gateway-down states), then the editor. */
export function PipelineEditor({ pipelineId }: { pipelineId: string }) {
  const api = useApi();
  const { state, load, live, dispatch, retry } = usePipeline(api, pipelineId);
  if (load.phase === "loading") {
    return (
      <main className="page">
        <LoadingState label="Loading pipeline…" />
      </main>
    );
  }
  if (load.phase === "error") {
    const unreachable = load.error instanceof ApiError && load.error.unreachable;
    const notFound = load.error instanceof ApiError && load.error.status === 404;
    return (
      <main className="page">
        <ErrorState
          title={unreachable ? "The gateway is not reachable" : notFound ? "Pipeline not found" : "Could not load the pipeline"}
          message={notFound ? `There is no pipeline with the id "${pipelineId}". It may have been deleted.` : errorMessage(load.error)}
          retryAt={load.retryAt}
          onRetry={notFound ? undefined : () => void retry()}
        />
        <p>
          <a href="/">← Back to the pipelines</a>
        </p>
      </main>
    );
  }
  return (
    <ReactFlowProvider>
      <Editor api={api} pipelineId={pipelineId} state={state} live={live} dispatch={dispatch} />
    </ReactFlowProvider>
  );
}

interface EditorProps {
  api: Api;
  pipelineId: string;
  state: GraphState;
  live: LiveStatus;
  dispatch: (a: GraphAction) => void;
}

/** One loaded pipeline: header and run bar, palette, canvas, run history and the selected node's panel. */
function Editor({ api, pipelineId, state, live, dispatch }: EditorProps) {
  const { toasts, push: toast, dismiss } = useToasts();
  const { canEdit, reason } = useCanEdit();
  const readOnly = canEdit ? null : (reason ?? "Changes need the editor role.");
  const { context, flow, writes, onBeforeDelete } = useGraphEditing({ api, pipelineId, state, dispatch, toast, readOnly });
  const { fitSoon, fitNow } = useFitView();
  const creation = useNodeCreation({ ...writes, fitSoon });
  const { adding } = creation;
  const addNode: typeof creation.addNode = readOnly ? async () => void toast(readOnly) : creation.addNode;
  const drops = useCanvasDrops(addNode);
  const connections = useConnections({ ...writes, updateNode: context.updateNode, onDropOnCanvas: drops.connectionDropped });
  const onNodeDragStop = usePositionSave(writes);
  const onExport = useExport(api, pipelineId, toast);
  const onAutoLayout = useAutoLayout({ ...writes, moveNode: flow.moveNode, fitSoon });
  const dialogs = useCommandDialogs();
  useEscapeToDeselect(flow.deselect);

  const selectedIds = flow.rfNodes.filter((n) => n.selected).map((n) => n.id);
  const selectedNode = selectedIds.length === 1 ? state.nodes.get(selectedIds[0]!) : undefined;
  useRevealSelected(selectedNode?.id);
  const { runs, select } = context;
  const [versionsOpen, setVersionsOpen] = useState(false);
  const [variablesOpen, setVariablesOpen] = useState(false);
  // One column at a time: run history, versions or variables.
  useEffect(() => {
    if (runs.historyOpen) {
      setVersionsOpen(false);
      setVariablesOpen(false);
    }
  }, [runs.historyOpen]);
  const historyColumn = runs.historyOpen || versionsOpen || variablesOpen;
  // The history column narrows (or widens) the canvas: fit the graph to what is left.
  useRefitOn(historyColumn, fitSoon);
  // What other pages change shows up at once; a notice says who changed what.
  const remote = state.remoteChange;
  useEffect(() => {
    if (remote) toast(`${remote.by} ${remote.what}`, "info");
  }, [remote, toast]);
  const counts = useMemo(() => statusCounts(state.nodes.values()), [state.nodes]);
  const cost = useMemo(() => totalCost(state.nodes.values()), [state.nodes]);

  return (
    <EditorContext.Provider value={context}>
      <div className="editor">
        <EditorHeader
          title={state.pipeline?.title ?? ""}
          counts={counts}
          cost={cost}
          live={live}
          undo={context.undo}
          onFitView={fitNow}
          onAutoLayout={() => void onAutoLayout()}
          onExport={() => void onExport()}
          readOnly={readOnly}
          onVersions={() => {
            if (!versionsOpen) runs.setHistoryOpen(false);
            setVariablesOpen(false);
            setVersionsOpen(!versionsOpen);
          }}
        />
        <RunBar runs={runs} counts={counts} nodes={state.nodes} select={select}>
          <button
            type="button"
            className={`button small secondary${variablesOpen ? " pressed" : ""}`}
            aria-pressed={variablesOpen}
            onClick={() => {
              if (!variablesOpen) runs.setHistoryOpen(false);
              setVersionsOpen(false);
              setVariablesOpen(!variablesOpen);
            }}
            title="What changes from one video to the next: {{name}} in texts, media assets bound to a variable"
            data-testid="variables-button"
          >
            Variables{context.variables.length ? ` (${context.variables.length})` : ""}
          </button>
          <Link
            href={`/pipelines/${encodeURIComponent(pipelineId)}/batches`}
            className="button small secondary"
            title="Run this pipeline once per row of a CSV of variable values"
            data-testid="batches-link"
          >
            Batches
          </Link>
        </RunBar>
        <div className={`editor-body${selectedNode ? " with-panel" : ""}${historyColumn ? " with-history" : ""}`}>
          <Palette onAdd={(type) => void addNode(type)} disabled={adding} readOnly={readOnly} />
          <EditorCanvas
            onDropType={drops.typeDropped}
            gatewayUrl={api.gatewayUrl}
            live={live}
            runs={runs}
            select={select}
            nodes={state.nodes}
            flow={flow}
            connections={connections}
            onBeforeDelete={onBeforeDelete}
            onNodeDragStop={onNodeDragStop}
            readOnly={readOnly !== null}
          />
          <RunHistory runs={runs} nodes={state.nodes} />
          {versionsOpen && (
            <VersionHistory
              api={api}
              pipelineId={pipelineId}
              revision={state.revision}
              toast={toast}
              readOnly={readOnly}
              onClose={() => setVersionsOpen(false)}
              onRestored={(pipeline) => dispatch({ kind: "loaded", pipeline, nodes: pipeline.nodes })}
            />
          )}
          {variablesOpen && (
            <VariablesPanel
              api={api}
              pipelineId={pipelineId}
              variables={context.variables}
              nodes={state.nodes}
              select={select}
              toast={toast}
              readOnly={readOnly}
              onClose={() => setVariablesOpen(false)}
              onSaved={(variables) => state.pipeline && dispatch({ kind: "pipeline", pipeline: { ...state.pipeline, variables } })}
            />
          )}
          {selectedNode && <NodePanel key={selectedNode.id} node={selectedNode} onClose={() => select(null)} />}
        </div>
        <Toasts toasts={toasts} dismiss={dismiss} />
        {dialogs.open === "shortcuts" && <ShortcutSheet onClose={() => dialogs.setOpen(null)} />}
        {dialogs.open === "search" && <NodeSearch onAdd={(type) => void addNode(type)} onClose={() => dialogs.setOpen(null)} />}
        {drops.picking && (
          <NodeSearch
            title={`Add a node fed by "${state.nodes.get(drops.picking.sourceId)?.title ?? drops.picking.sourceId}"`}
            types={typesTakingOutputOf(state.nodes.get(drops.picking.sourceId)!).map((t) => t.type)}
            onAdd={(type) => drops.pick(type, state.nodes.get(drops.picking!.sourceId)!)}
            onClose={drops.cancel}
          />
        )}
      </div>
    </EditorContext.Provider>
  );
}

/**
 * The model and its writes, as node cards and the panel read them (the editor context), with React Flow's side of
 * the canvas. The context changes with the model, not with every drag tick of React Flow.
 */
function useGraphEditing({ api, pipelineId, state, dispatch, toast, readOnly }: Omit<WriteDeps, "latest"> & { state: GraphState; readOnly: string | null }) {
  const lookup = useMemo(() => graphLookup(state.nodes), [state.nodes]);
  const latest = useRef({ nodes: state.nodes, lookup });
  latest.current = { nodes: state.nodes, lookup };
  const flow = useFlowNodes(state.nodes);
  const undo = useUndo({ api, pipelineId, dispatch, toast, onMoved: flow.moveNode });
  const writes: WriteDeps = { api, pipelineId, dispatch, toast, latest, record: undo.record };

  const updateNode = useUpdateNode(writes);
  const { execute, executing } = useExecute(writes);
  const { upload, uploads } = useUpload({ ...writes, updateNode });
  const { drafts, setTextDraft } = useTextDrafts(updateNode, latest, toast);
  const { removeNode, onBeforeDelete } = useNodeRemoval({ ...writes, updateNode, onDeleted: flow.clearEdgeSelection });
  const runs = useRuns({ api, pipelineId, state, dispatch, toast });
  const { duplicate } = useClipboard({ ...writes, selectMany: flow.selectMany, readOnly: readOnly !== null });
  const outdated = useOutdated(api, pipelineId, state.nodes);
  const blocked = useMemo(() => blockedByDisabled(state.nodes.values()), [state.nodes]);
  const { select } = flow;
  const variables = state.pipeline?.variables ?? NO_VARIABLES;

  const context: EditorContextValue = useMemo(
    () => ({
      pipelineId,
      api,
      nodes: state.nodes,
      lookup,
      updateNode,
      execute,
      executing,
      upload,
      uploads,
      textDraft: (id: string) => drafts.get(id),
      setTextDraft,
      removeNode,
      toast,
      select,
      runs,
      outdated,
      blocked,
      undo,
      duplicate,
      readOnly,
      variables,
    }),
    [
      pipelineId,
      api,
      state.nodes,
      lookup,
      updateNode,
      execute,
      executing,
      upload,
      uploads,
      drafts,
      setTextDraft,
      removeNode,
      toast,
      select,
      runs,
      outdated,
      blocked,
      undo,
      duplicate,
      readOnly,
      variables,
    ],
  );
  return { context, flow, writes, onBeforeDelete };
}

const NO_VARIABLES: never[] = [];

export type { EditorNode };
