"use client";

import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import {
  applyNodeChanges,
  Background,
  Controls,
  MarkerType,
  MiniMap,
  Panel,
  ReactFlow,
  ReactFlowProvider,
  useConnection,
  useReactFlow,
  type Connection,
  type Edge,
  type EdgeChange,
  type FinalConnectionState,
  type Node,
  type NodeChange,
} from "@xyflow/react";
import type { NodeType } from "@vp/contracts";
import { connectionProblem, type NodeLookup } from "@vp/flow-graph";
import { ApiError, errorMessage, type Api } from "@/lib/api";
import {
  edgesOf,
  graphLookup,
  inputsWithout,
  nextNodeId,
  statusCounts,
  totalCost,
  type EditorNode,
  type GraphAction,
  type GraphState,
} from "@/lib/graph-state";
import { layoutMissing, placeNewNode } from "@/lib/layout";
import { guessMime, mediaOfFile, NODE_TYPE_INFO } from "@/lib/node-types";
import { usePipeline, type LiveStatus } from "@/lib/use-pipeline";
import { useApi } from "../gateway";
import { ErrorState, LoadingState } from "../states";
import { EditorContext, useEditor, type EditorContextValue, type NodePatch } from "./context";
import { EditorHeader } from "./header";
import { NodeCard } from "./node-card";
import { NodePanel } from "./node-panel";
import { Palette } from "./palette";
import { RefusalBanner, RunBar } from "./run-controls";
import { RunHistory } from "./run-history";
import { Toasts, useToasts } from "./toasts";
import { useRuns } from "./use-runs";

const NODE_TYPES_RF = { vp: NodeCard };
const TEXT_SAVE_DELAY_MS = 500;
const FIT = { padding: 0.15, maxZoom: 1, minZoom: 0.3 } as const;

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

function Editor({
  api,
  pipelineId,
  state,
  live,
  dispatch,
}: {
  api: Api;
  pipelineId: string;
  state: GraphState;
  live: LiveStatus;
  dispatch: (a: GraphAction) => void;
}) {
  const rf = useReactFlow();
  const { toasts, push: toast, dismiss } = useToasts();
  const [rfNodes, setRfNodes] = useState<Node[]>([]);
  const [selectedEdges, setSelectedEdges] = useState<ReadonlySet<string>>(new Set());
  const [executing, setExecuting] = useState<ReadonlySet<string>>(new Set());
  const [uploads, setUploads] = useState<ReadonlyMap<string, number>>(new Map());
  const [drafts, setDrafts] = useState<ReadonlyMap<string, string>>(new Map());
  const [adding, setAdding] = useState(false);
  const draftTimers = useRef(new Map<string, ReturnType<typeof setTimeout>>());

  const lookup = useMemo(() => graphLookup(state.nodes), [state.nodes]);
  const latest = useRef({ nodes: state.nodes, lookup });
  latest.current = { nodes: state.nodes, lookup };

  // React Flow keeps position, size and selection; the model keeps everything else. Nodes added or removed
  // in the model are added or removed here; a node without a stored position gets a layered one.
  useEffect(() => {
    setRfNodes((previous) => {
      const ids = [...state.nodes.keys()];
      if (previous.length === ids.length && previous.every((n, i) => n.id === ids[i])) return previous;
      const byId = new Map(previous.map((n) => [n.id, n]));
      const positions = layoutMissing([...state.nodes.values()]);
      return ids.map((id) => byId.get(id) ?? { id, type: "vp", position: positions.get(id)!, data: {} });
    });
  }, [state.nodes]);

  const fitSoon = useCallback(() => {
    // After React has rendered and React Flow has measured the nodes.
    requestAnimationFrame(() => requestAnimationFrame(() => void rf.fitView(FIT)));
  }, [rf]);

  const updateNode = useCallback(
    async (id: string, patch: NodePatch): Promise<boolean> => {
      try {
        const { node } = await api.updateNode(pipelineId, id, patch);
        dispatch({ kind: "saved", node });
        return true;
      } catch (error) {
        toast(`Not saved: ${errorMessage(error)}`);
        return false;
      }
    },
    [api, pipelineId, dispatch, toast],
  );

  const execute = useCallback(
    async (id: string) => {
      setExecuting((s) => new Set(s).add(id));
      try {
        await api.executeNode(pipelineId, id);
      } catch (error) {
        toast(`Not started: ${errorMessage(error)}`);
      } finally {
        setExecuting((s) => {
          const next = new Set(s);
          next.delete(id);
          return next;
        });
      }
    },
    [api, pipelineId, toast],
  );

  const upload = useCallback(
    async (id: string, file: File) => {
      const node = latest.current.nodes.get(id);
      if (!node) return;
      const media = mediaOfFile(file);
      if (!media) {
        toast(`${file.name}: not a video, audio, image, text or JSON file`);
        return;
      }
      const declared = (node.asset as { type?: string } | null)?.type;
      // The asset's media type follows the file chosen (the gateway checks it against downstream inputs).
      if (declared !== media && !(await updateNode(id, { asset: { type: media } }))) return;
      const setProgress = (fraction: number) => setUploads((m) => new Map(m).set(id, fraction));
      setProgress(0);
      try {
        const { node: saved } = await api.uploadAsset(pipelineId, id, file, file.type || guessMime(file.name), setProgress);
        dispatch({ kind: "saved", node: saved });
      } catch (error) {
        toast(`Upload of ${file.name} failed: ${errorMessage(error)}`);
      } finally {
        setUploads((m) => {
          const next = new Map(m);
          next.delete(id);
          return next;
        });
      }
    },
    [api, pipelineId, dispatch, toast, updateNode],
  );

  const setTextDraft = useCallback(
    (id: string, text: string) => {
      setDrafts((m) => new Map(m).set(id, text));
      clearTimeout(draftTimers.current.get(id));
      draftTimers.current.set(
        id,
        setTimeout(async () => {
          const node = latest.current.nodes.get(id);
          const type = (node?.asset as { type?: string } | null)?.type;
          if (type === "json") {
            try {
              JSON.parse(text);
            } catch {
              return; // shown under the field; not saved
            }
          }
          const ok = await updateNode(id, { asset: { content: text } });
          if (ok) {
            setDrafts((m) => {
              if (m.get(id) !== text) return m;
              const next = new Map(m);
              next.delete(id);
              return next;
            });
          }
        }, TEXT_SAVE_DELAY_MS),
      );
    },
    [updateNode],
  );
  useEffect(() => {
    const timers = draftTimers.current;
    return () => {
      for (const t of timers.values()) clearTimeout(t);
    };
  }, []);

  const select = useCallback((id: string | null) => {
    setRfNodes((nds) => nds.map((n) => (n.selected === (n.id === id) ? n : { ...n, selected: n.id === id })));
  }, []);

  const addNode = useCallback(
    async (type: NodeType) => {
      setAdding(true);
      try {
        const nodes = latest.current.nodes;
        const id = nextNodeId(type, nodes.keys());
        const sameType = [...nodes.values()].filter((n) => n.type === type).length;
        const placed = rf.getNodes().map((n) => ({ position: n.position, height: n.measured?.height }));
        const { node } = await api.createNode(pipelineId, {
          id,
          title: `${NODE_TYPE_INFO[type].label} ${sameType + 1}`,
          type,
          position: placeNewNode(type, placed),
          ...(type === "asset" ? { asset: { type: "video" } } : {}),
        });
        dispatch({ kind: "added", node });
        fitSoon();
      } catch (error) {
        toast(`Node not added: ${errorMessage(error)}`);
      } finally {
        setAdding(false);
      }
    },
    [api, pipelineId, rf, dispatch, toast, fitSoon],
  );

  const removeNode = useCallback(
    async (id: string) => {
      const { nodes } = latest.current;
      const node = nodes.get(id);
      if (!node) return;
      if (node.status === "queued" || node.status === "in_progress") {
        toast(`"${node.title}" is running; delete it when it has finished`);
        return;
      }
      // Take it out of every node that uses it first (the gateway refuses to delete a node that is an input).
      for (const other of nodes.values()) {
        const patch = inputsWithout(other.inputs ?? {}, id);
        if (Object.keys(patch).length && !(await updateNode(other.id, { inputs: patch }))) return;
      }
      try {
        await api.deleteNode(pipelineId, id);
        dispatch({ kind: "removed", id });
      } catch (error) {
        toast(`"${node.title}" not deleted: ${errorMessage(error)}`);
      }
    },
    [api, pipelineId, dispatch, toast, updateNode],
  );

  const removeEdge = useCallback(
    async (edge: Pick<Edge, "source" | "target" | "targetHandle">) => {
      const target = latest.current.nodes.get(edge.target);
      if (!target || !edge.targetHandle) return;
      const patch = inputsWithout(target.inputs ?? {}, edge.source, edge.targetHandle);
      if (Object.keys(patch).length) await updateNode(target.id, { inputs: patch });
    },
    [updateNode],
  );

  // Keyboard Delete/Backspace (React Flow) deletes through the gateway; the model updates on success.
  const onBeforeDelete = useCallback(
    async ({ nodes, edges }: { nodes: Node[]; edges: Edge[] }) => {
      const doomed = new Set(nodes.map((n) => n.id));
      for (const edge of edges) if (!doomed.has(edge.source) && !doomed.has(edge.target)) await removeEdge(edge);
      for (const id of doomed) await removeNode(id);
      setSelectedEdges(new Set());
      return false;
    },
    [removeEdge, removeNode],
  );

  const onNodesChange = useCallback((changes: NodeChange[]) => {
    setRfNodes((nds) =>
      applyNodeChanges(
        changes.filter((c) => c.type !== "remove"),
        nds,
      ),
    );
  }, []);

  const onEdgesChange = useCallback((changes: EdgeChange[]) => {
    const selects = changes.filter((c) => c.type === "select");
    if (!selects.length) return;
    setSelectedEdges((current) => {
      const next = new Set(current);
      for (const c of selects) c.selected ? next.add(c.id) : next.delete(c.id);
      return next;
    });
  }, []);

  // Positions are their own column: saving one is never a config change.
  const onNodeDragStop = useCallback(
    (_event: unknown, _node: Node, moved: Node[]) => {
      for (const n of moved) {
        const position = { x: Math.round(n.position.x), y: Math.round(n.position.y) };
        api
          .updateNode(pipelineId, n.id, { position })
          .then(({ node }) => dispatch({ kind: "saved", node }))
          .catch((error) => toast(`Position not saved: ${errorMessage(error)}`));
      }
    },
    [api, pipelineId, dispatch, toast],
  );

  const isValidConnection = useCallback(
    (c: Connection | Edge) =>
      !!c.targetHandle && connectionProblem(latest.current.lookup, { source: c.source, target: c.target, slot: c.targetHandle }) === null,
    [],
  );

  const onConnect = useCallback(
    async (c: Connection) => {
      const target = latest.current.nodes.get(c.target);
      if (!target || !c.targetHandle) return;
      const problem = connectionProblem(latest.current.lookup, { source: c.source, target: c.target, slot: c.targetHandle });
      if (problem) {
        toast(`Not connected: ${problem}`);
        return;
      }
      await updateNode(c.target, { inputs: { [c.targetHandle]: [...(target.inputs?.[c.targetHandle] ?? []), c.source] } });
    },
    [toast, updateNode],
  );

  const onConnectEnd = useCallback(
    (_event: MouseEvent | TouchEvent, state: FinalConnectionState) => {
      if (state.isValid !== false || !state.toHandle || !state.fromHandle || !state.fromNode) return;
      const reason = refusalReason(latest.current.lookup, state.fromHandle, state.toHandle);
      if (reason) toast(`Not connected: ${reason}`);
    },
    [toast],
  );

  // Escape: deselect everything and close the panel.
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (event.key !== "Escape") return;
      const active = document.activeElement as HTMLElement | null;
      if (active && active !== document.body && active.closest(".panel")) active.blur();
      setRfNodes((nds) => (nds.some((n) => n.selected) ? nds.map((n) => (n.selected ? { ...n, selected: false } : n)) : nds));
      setSelectedEdges((s) => (s.size ? new Set() : s));
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);

  const edges: Edge[] = useMemo(
    () =>
      edgesOf(state.nodes).map((e) => {
        const ready = state.nodes.get(e.source)?.status === "completed";
        return {
          id: e.id,
          source: e.source,
          target: e.target,
          sourceHandle: "out",
          targetHandle: e.slot,
          selected: selectedEdges.has(e.id),
          label: e.slotSize > 1 ? `${e.order}` : undefined,
          labelBgPadding: [6, 3] as [number, number],
          labelBgBorderRadius: 8,
          className: ready ? "edge-ready" : "edge-waiting",
          markerEnd: { type: MarkerType.ArrowClosed, width: 16, height: 16 },
          ariaLabel: `${e.source} to ${e.target} ${e.slot} #${e.order}`,
        };
      }),
    [state.nodes, selectedEdges],
  );

  const selectedIds = rfNodes.filter((n) => n.selected).map((n) => n.id);
  const selectedNode = selectedIds.length === 1 ? state.nodes.get(selectedIds[0]!) : undefined;
  // Opening the panel narrows the canvas: bring the selected node into view if it ended up behind the edge.
  const selectedId = selectedNode?.id;
  useEffect(() => {
    if (!selectedId) return;
    const frame = requestAnimationFrame(() => {
      const element = document.querySelector(`.react-flow__node[data-id="${CSS.escape(selectedId)}"]`);
      const canvas = document.querySelector(".canvas");
      const internal = rf.getInternalNode(selectedId);
      if (!element || !canvas || !internal) return;
      const box = element.getBoundingClientRect();
      const view = canvas.getBoundingClientRect();
      if (box.left >= view.left && box.right <= view.right && box.top >= view.top && box.bottom <= view.bottom) return;
      const width = internal.measured.width ?? 264;
      const height = internal.measured.height ?? 250;
      const { x, y } = internal.internals.positionAbsolute;
      void rf.setCenter(x + width / 2, y + height / 2, { zoom: rf.getZoom(), duration: 150 });
    });
    return () => cancelAnimationFrame(frame);
  }, [selectedId, rf]);

  const runs = useRuns({ api, pipelineId, state, dispatch, toast });
  // The history column narrows (or widens) the canvas: fit the graph to what is left.
  const historyOpen = runs.historyOpen;
  const firstRender = useRef(true);
  useEffect(() => {
    if (firstRender.current) {
      firstRender.current = false;
      return;
    }
    fitSoon();
  }, [historyOpen, fitSoon]);
  const counts = useMemo(() => statusCounts(state.nodes.values()), [state.nodes]);
  const cost = useMemo(() => totalCost(state.nodes.values()), [state.nodes]);

  const exportJson = useCallback(async () => {
    try {
      const document = await api.exportPipeline(pipelineId);
      const blob = new Blob([`${JSON.stringify(document, null, 2)}\n`], { type: "application/json" });
      const url = URL.createObjectURL(blob);
      const a = window.document.createElement("a");
      a.href = url;
      a.download = `${(
        document.title
          .toLowerCase()
          .replace(/[^a-z0-9]+/g, "-")
          .replace(/^-+|-+$/g, "") || "pipeline"
      ).slice(0, 60)}.pipeline.json`;
      a.click();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (error) {
      toast(`Export failed: ${errorMessage(error)}`);
    }
  }, [api, pipelineId, toast]);

  // Node cards read this context; it changes with the model, not with every drag tick of React Flow.
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
    }),
    [pipelineId, api, state.nodes, lookup, updateNode, execute, executing, upload, uploads, drafts, setTextDraft, removeNode, toast, select, runs],
  );

  return (
    <EditorContext.Provider value={context}>
      <div className="editor">
        <EditorHeader
          title={state.pipeline?.title ?? ""}
          counts={counts}
          cost={cost}
          live={live}
          onFitView={() => void rf.fitView({ ...FIT, duration: 200 })}
          onExport={() => void exportJson()}
        />
        <RunBar runs={runs} counts={counts} nodes={state.nodes} select={select} />
        <div className={`editor-body${selectedNode ? " with-panel" : ""}${runs.historyOpen ? " with-history" : ""}`}>
          <Palette onAdd={(type) => void addNode(type)} disabled={adding} />
          <div className="canvas" data-testid="canvas">
            {live === "reconnecting" && (
              <div className="banner" role="alert" data-testid="disconnected-banner">
                Disconnected from the gateway at {api.gatewayUrl}. Reconnecting… Statuses update again when it is back.
              </div>
            )}
            <ReactFlow
              nodes={rfNodes}
              edges={edges}
              nodeTypes={NODE_TYPES_RF}
              onNodesChange={onNodesChange}
              onEdgesChange={onEdgesChange}
              onConnect={(c) => void onConnect(c)}
              onConnectEnd={onConnectEnd}
              isValidConnection={isValidConnection}
              onBeforeDelete={onBeforeDelete}
              onNodeDragStop={onNodeDragStop}
              deleteKeyCode={["Delete", "Backspace"]}
              fitView
              fitViewOptions={FIT}
              minZoom={0.2}
              maxZoom={2}
              connectionRadius={24}
              proOptions={{ hideAttribution: true }}
            >
              <Background gap={20} size={1.2} color="#d4d4d8" />
              <Controls showInteractive={false} position="bottom-left" />
              <MiniMap
                pannable
                zoomable
                position="bottom-right"
                nodeColor={(n) => NODE_TYPE_INFO[state.nodes.get(n.id)?.type ?? "asset"].color}
                nodeBorderRadius={6}
                maskColor="rgba(244,244,245,0.7)"
                style={{ width: 150, height: 100 }}
              />
              <ConnectionHint />
            </ReactFlow>
            <RefusalBanner runs={runs} nodes={state.nodes} select={select} />
            {state.nodes.size === 0 && (
              <div className="canvas-empty" data-testid="canvas-empty">
                <strong>This pipeline has no nodes yet</strong>
                <span>Add one from the palette on the left, then connect an output to an input.</span>
              </div>
            )}
          </div>
          <RunHistory runs={runs} nodes={state.nodes} />
          {selectedNode && <NodePanel key={selectedNode.id} node={selectedNode} onClose={() => select(null)} />}
        </div>
        <Toasts toasts={toasts} dismiss={dismiss} />
      </div>
    </EditorContext.Provider>
  );
}

type HandleRef = { nodeId: string; id?: string | null; type: "source" | "target" };

/** Why the handle under the pointer cannot take this connection (shown while dragging and after). */
function refusalReason(lookup: NodeLookup, from: HandleRef, to: HandleRef): string | null {
  if (from.type === to.type) return from.type === "source" ? "connect an output to an input (the handles on the left)" : "connect an input to an output";
  const [source, target] = from.type === "source" ? [from, to] : [to, from];
  if (!target.id) return null;
  return connectionProblem(lookup, { source: source.nodeId, target: target.nodeId, slot: target.id });
}

function ConnectionHint() {
  const connection = useConnection();
  const { lookup, nodes } = useEditor();
  if (!connection.inProgress) return null;
  let text: string;
  let kind: "valid" | "invalid" | "idle" = "idle";
  const to = connection.toHandle;
  if (to && connection.isValid === false) {
    kind = "invalid";
    text = `Cannot connect: ${refusalReason(lookup, connection.fromHandle, to) ?? "not allowed"}`;
  } else if (to && connection.isValid) {
    kind = "valid";
    const target = connection.fromHandle.type === "source" ? to : connection.fromHandle;
    text = `Release to connect to ${nodes.get(target.nodeId)?.title ?? target.nodeId} · ${target.id}`;
  } else {
    text = connection.fromHandle.type === "source" ? "Drop on an input handle (left side of a node)" : "Drop on an output handle (right side of a node)";
  }
  return (
    <Panel position="top-center">
      <div className={`connection-hint ${kind}`} role={kind === "invalid" ? "alert" : "status"} data-testid="connection-hint" data-kind={kind}>
        {text}
      </div>
    </Panel>
  );
}

export type { EditorNode };
