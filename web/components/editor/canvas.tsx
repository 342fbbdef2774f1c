"use client";

import { useMemo, useRef, useState } from "react";
import { Background, Controls, MiniMap, ReactFlow, type Edge, type Node, type OnBeforeDelete, type OnNodeDrag } from "@xyflow/react";
import type { NodeType } from "@vp/contracts";
import { flowEdges } from "@/lib/canvas";
import type { EditorNode } from "@/lib/graph-state";
import { NODE_TYPE_INFO } from "@/lib/node-types";
import type { LiveStatus } from "@/lib/use-pipeline";
import { ConnectionHint } from "./connection-hint";
import { NodeCard } from "./node-card";
import { NodeMenu, type MenuAt } from "./node-menu";
import { NODE_TYPE_MIME } from "./palette";
import { RefusalBanner } from "./run-controls";
import type { useConnections } from "./use-connections";
import type { useFlowNodes } from "./use-flow-nodes";
import type { RunsController } from "./use-runs";
import { FIT } from "./use-viewport";
import { useTheme } from "../theme-switch";

const NODE_TYPES_RF = { vp: NodeCard };

interface CanvasProps {
  nodes: ReadonlyMap<string, EditorNode>;
  flow: ReturnType<typeof useFlowNodes>;
  connections: ReturnType<typeof useConnections>;
  onBeforeDelete: OnBeforeDelete<Node, Edge>;
  onNodeDragStop: OnNodeDrag<Node>;
  /** Nodes cannot be moved, connected, deleted or changed (the user lacks the editor role). */
  readOnly?: boolean;
}

/** The canvas column: the graph, the connection banner, a refused run's reasons, the empty state. */
export function EditorCanvas({
  gatewayUrl,
  live,
  runs,
  select,
  onDropType,
  ...graph
}: CanvasProps & {
  gatewayUrl: string;
  live: LiveStatus;
  runs: RunsController;
  select: (id: string | null) => void;
  /** A node type dragged from the palette and let go over the canvas, at this point of the screen. */
  onDropType: (type: NodeType, at: { x: number; y: number }) => void;
}) {
  const [menu, setMenu] = useState<MenuAt | null>(null);
  return (
    <div
      className="canvas"
      role="application"
      aria-label="Pipeline canvas: drop a node type from the palette here"
      data-testid="canvas"
      onDragOver={(e) => {
        if (!e.dataTransfer.types.includes(NODE_TYPE_MIME)) return;
        e.preventDefault();
        e.dataTransfer.dropEffect = "copy";
      }}
      onDrop={(e) => {
        const type = e.dataTransfer.getData(NODE_TYPE_MIME) as NodeType;
        if (!type || !(type in NODE_TYPE_INFO)) return;
        e.preventDefault();
        onDropType(type, { x: e.clientX, y: e.clientY });
      }}
    >
      {live === "reconnecting" && (
        <div className="banner" role="alert" data-testid="disconnected-banner">
          Disconnected from the gateway at {gatewayUrl}. Reconnecting… Statuses update again when it is back.
        </div>
      )}
      <FlowGraph {...graph} onMenu={setMenu} />
      {menu && <NodeMenu at={menu} onClose={() => setMenu(null)} />}
      <RefusalBanner runs={runs} nodes={graph.nodes} select={select} />
      {graph.nodes.size === 0 && (
        <div className="canvas-empty" data-testid="canvas-empty">
          <strong>This pipeline has no nodes yet</strong>
          <span>Add one from the palette on the left, then connect an output to an input.</span>
        </div>
      )}
    </div>
  );
}

/** React Flow over the model: node cards, derived edges, the minimap coloured by node type. */
function FlowGraph({ nodes, flow, connections, onBeforeDelete, onNodeDragStop, onMenu, readOnly }: CanvasProps & { onMenu: (at: MenuAt) => void }) {
  const edges = useMemo(() => flowEdges(nodes, flow.selectedEdges), [nodes, flow.selectedEdges]);
  const { theme } = useTheme();
  // Where the last press on the canvas began: a click that ends elsewhere was a drag, not a pick.
  const pressedAt = useRef<{ x: number; y: number } | null>(null);
  return (
    <ReactFlow
      onPointerDownCapture={(event) => (pressedAt.current = { x: event.clientX, y: event.clientY })}
      onNodeClick={(event, node) => {
        // React Flow keeps a multi-selection when one of its nodes is clicked; a plain click picks that node alone
        // (so its panel opens), as a drag of the selection or a Shift/Ctrl click still does not.
        const from = pressedAt.current;
        if (event.shiftKey || event.ctrlKey || event.metaKey) return;
        if (from && Math.hypot(event.clientX - from.x, event.clientY - from.y) > 4) return;
        if (flow.rfNodes.filter((n) => n.selected).length > 1) flow.select(node.id);
      }}
      nodes={flow.rfNodes}
      edges={edges}
      nodeTypes={NODE_TYPES_RF}
      onNodesChange={flow.onNodesChange}
      onEdgesChange={flow.onEdgesChange}
      onConnect={(c) => void connections.onConnect(c)}
      onConnectEnd={connections.onConnectEnd}
      isValidConnection={connections.isValidConnection}
      onBeforeDelete={onBeforeDelete}
      onNodeDragStop={onNodeDragStop}
      onNodeContextMenu={(event, node) => {
        event.preventDefault();
        if (!readOnly) onMenu({ id: node.id, x: event.clientX, y: event.clientY });
      }}
      nodesDraggable={!readOnly}
      nodesConnectable={!readOnly}
      deleteKeyCode={readOnly ? null : ["Delete", "Backspace"]}
      fitView
      fitViewOptions={FIT}
      minZoom={0.2}
      maxZoom={2}
      connectionRadius={24}
      proOptions={{ hideAttribution: true }}
      colorMode={theme}
    >
      <Background gap={20} size={1.2} color="var(--grid)" />
      {/* Zoom only: "Fit view" is the header's button. */}
      <Controls showInteractive={false} showFitView={false} position="bottom-left" />
      <MiniMap
        pannable
        zoomable
        position="bottom-right"
        nodeColor={(n) => NODE_TYPE_INFO[nodes.get(n.id)?.type ?? "asset"].color}
        nodeBorderRadius={6}
        maskColor="var(--minimap-mask)"
        style={{ width: 150, height: 100 }}
      />
      <ConnectionHint />
    </ReactFlow>
  );
}
