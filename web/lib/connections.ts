import { connectionProblem, type NodeLookup } from "@vp/flow-graph";
import type { EditorNode } from "./graph-state";

/** A handle at one end of a connection being drawn (React Flow's shape). */
export type HandleRef = { nodeId: string; id?: string | null; type: "source" | "target" };

/** Why the handle under the pointer cannot take this connection (shown while dragging and after). */
export function refusalReason(lookup: NodeLookup, from: HandleRef, to: HandleRef): string | null {
  if (from.type === to.type) return from.type === "source" ? "connect an output to an input (the handles on the left)" : "connect an input to an output";
  const [source, target] = from.type === "source" ? [from, to] : [to, from];
  if (!target.id) return null;
  return connectionProblem(lookup, { source: source.nodeId, target: target.nodeId, slot: target.id });
}

export interface ConnectionHint {
  kind: "valid" | "invalid" | "idle";
  text: string;
}

/** What to tell the producer while a connection is drawn: where to drop it, what it would connect, or why not. */
export function connectionHint(
  connection: { fromHandle: HandleRef; toHandle: HandleRef | null; isValid: boolean | null },
  lookup: NodeLookup,
  nodes: ReadonlyMap<string, EditorNode>,
): ConnectionHint {
  const to = connection.toHandle;
  if (to && connection.isValid === false) {
    return { kind: "invalid", text: `Cannot connect: ${refusalReason(lookup, connection.fromHandle, to) ?? "not allowed"}` };
  }
  if (to && connection.isValid) {
    const target = connection.fromHandle.type === "source" ? to : connection.fromHandle;
    return { kind: "valid", text: `Release to connect to ${nodes.get(target.nodeId)?.title ?? target.nodeId} · ${target.id}` };
  }
  const text = connection.fromHandle.type === "source" ? "Drop on an input handle (left side of a node)" : "Drop on an output handle (right side of a node)";
  return { kind: "idle", text };
}

/** The target's inputs patch that appends `source` to `slot` (the end of a merge's play order). */
export function connectPatch(target: EditorNode, source: string, slot: string): Record<string, string[]> {
  return { [slot]: [...(target.inputs?.[slot] ?? []), source] };
}
