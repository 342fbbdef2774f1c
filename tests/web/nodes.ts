/** Node builders shared by the editor's browser-free tests. */
import type { ApiNode } from "../../web/lib/api";
import type { EditorNode } from "../../web/lib/graph-state";

/** A node as the gateway answers it: a pending video asset unless `over` says otherwise. */
export const apiNode = (over: Partial<ApiNode> & { id: string }): ApiNode => ({
  pipeline_id: "p",
  title: over.id,
  type: "asset",
  inputs: {},
  config: {},
  asset: { type: "video" },
  status: "pending",
  metadata: null,
  output: null,
  position: null,
  ...over,
});

/** The same node in the editor's model (no state event seen yet). */
export const editorNode = (over: Partial<ApiNode> & { id: string }): EditorNode => ({ ...apiNode(over), stateVersion: -1, ...over });

/** The editor's node map. */
export const graph = (...nodes: EditorNode[]) => new Map(nodes.map((n) => [n.id, n]));
