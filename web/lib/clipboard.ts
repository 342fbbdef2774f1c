import { z } from "zod";
import { DocumentNode } from "@vp/contracts";
import { toDocumentNode } from "@vp/flow-graph";
import type { NewNodeBody } from "./api";
import { nextNodeId, type EditorNode } from "./graph-state";

/**
 * Copy and paste of nodes, within a pipeline or into another one: the copied nodes travel as the pipeline document's
 * node shape (structure only: no results, no uploaded files) under a format name of their own, so text copied from
 * anywhere else is never mistaken for nodes.
 */
export const CLIPBOARD_FORMAT = "video-pipelines/nodes";
const Clipboard = z.strictObject({ format: z.literal(CLIPBOARD_FORMAT), version: z.literal(1), nodes: z.array(DocumentNode).min(1).max(200) });

/** How far a pasted node lands from where it was copied, so the copy does not hide the original. */
export const PASTE_OFFSET = 48;

/** The clipboard text for `ids` (in the model's order). */
export function copyText(nodes: ReadonlyMap<string, EditorNode>, ids: Iterable<string>): string {
  const wanted = new Set(ids);
  const copied = [...nodes.values()].filter((n) => wanted.has(n.id)).map(toDocumentNode);
  return JSON.stringify({ format: CLIPBOARD_FORMAT, version: 1, nodes: copied });
}

/** The copied nodes in clipboard text, or null when the text is not a copy of nodes. */
export function parseCopied(text: string): DocumentNode[] | null {
  try {
    const parsed = Clipboard.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data.nodes : null;
  } catch {
    return null;
  }
}

/**
 * The nodes to create for a paste into a pipeline holding `existing`: fresh ids where the copied ones are taken,
 * connections between copied nodes kept (to the new ids), connections to a node outside the copy kept only when
 * that node is in this pipeline, positions moved by `offset`, and a title that is already used gets " (copy)".
 * In creation order: a node comes after the copied nodes it takes input from.
 */
export function pasteBodies(copied: readonly DocumentNode[], existing: ReadonlyMap<string, EditorNode>, offset = PASTE_OFFSET): NewNodeBody[] {
  const taken = new Set(existing.keys());
  const newId = new Map<string, string>();
  for (const node of copied) {
    const id = taken.has(node.id) ? nextNodeId(node.type, taken) : node.id;
    taken.add(id);
    newId.set(node.id, id);
  }
  const titles = new Set([...existing.values()].map((n) => n.title));
  const bodies = new Map<string, NewNodeBody>();
  for (const node of copied) {
    const inputs = Object.fromEntries(
      Object.entries(node.inputs ?? {}).map(([slot, ids]) => [slot, ids.filter((id) => newId.has(id) || existing.has(id)).map((id) => newId.get(id) ?? id)]),
    );
    const body: NewNodeBody = {
      id: newId.get(node.id)!,
      title: titles.has(node.title) ? `${node.title} (copy)`.slice(0, 200) : node.title,
      type: node.type,
      inputs,
      config: node.config ?? {},
      ...(node.asset ? { asset: node.asset } : {}),
      ...(node.position ? { position: { x: node.position.x + offset, y: node.position.y + offset } } : {}),
      ...(node.disabled ? { disabled: true } : {}),
    };
    bodies.set(node.id, body);
  }
  return creationOrder(copied, bodies);
}

function creationOrder(copied: readonly DocumentNode[], bodies: Map<string, NewNodeBody>): NewNodeBody[] {
  const ordered: NewNodeBody[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = (node: DocumentNode) => {
    if (state.get(node.id)) return;
    state.set(node.id, "visiting");
    for (const up of Object.values(node.inputs ?? {}).flat()) {
      const upstream = copied.find((n) => n.id === up);
      if (upstream) visit(upstream);
    }
    state.set(node.id, "done");
    ordered.push(bodies.get(node.id)!);
  };
  for (const node of copied) visit(node);
  return ordered;
}
