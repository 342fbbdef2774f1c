import { toDocumentNode } from "@vp/flow-graph";
import type { NewNodeBody, StructurePatch } from "./api";
import type { EditorNode } from "./graph-state";

export type { StructurePatch };

/**
 * The editor's undo history. Every structure change the producer makes (add, delete, connect, disconnect, move,
 * config, title, asset text, disable) is recorded as the writes that redo it and the writes that undo it, computed
 * from the model before the change. Undo and redo send those writes through the gateway like any other edit.
 */

/** What re-creates a deleted node: its structure as a pipeline document carries it (a file or a result cannot come back). */
export type NodeBody = NewNodeBody;

export type StructureWrite = { kind: "update"; id: string; patch: StructurePatch } | { kind: "create"; node: NodeBody } | { kind: "delete"; id: string };

export interface UndoEntry {
  /** What the producer did, as the Undo/Redo buttons name it ("Change Speed of Voiceover"). */
  label: string;
  /** In order. */
  undo: StructureWrite[];
  redo: StructureWrite[];
}

/** The patch that puts back what `patch` changes on `before`. */
export function inversePatch(before: EditorNode, patch: StructurePatch): StructurePatch {
  const inverse: StructurePatch = {};
  if (patch.title !== undefined) inverse.title = before.title;
  if (patch.inputs) {
    const inputs = before.inputs ?? {};
    inverse.inputs = Object.fromEntries(Object.keys(patch.inputs).map((slot) => [slot, [...(inputs[slot] ?? [])]]));
  }
  if (patch.config) {
    const config = before.config ?? {};
    inverse.config = Object.fromEntries(Object.keys(patch.config).map((key) => [key, Object.hasOwn(config, key) ? config[key] : null]));
  }
  if (patch.asset) {
    const asset = (before.asset ?? {}) as { type?: string; content?: string };
    inverse.asset = {};
    if (patch.asset.type !== undefined && asset.type !== undefined) inverse.asset.type = asset.type;
    if (patch.asset.content !== undefined) inverse.asset.content = asset.content ?? "";
    if (patch.asset.variable !== undefined) inverse.asset.variable = (before.asset as { variable?: string } | null)?.variable ?? null;
  }
  if (patch.position && before.position) inverse.position = { x: before.position.x, y: before.position.y };
  if (patch.disabled !== undefined) inverse.disabled = before.disabled === true;
  return inverse;
}

/** The body that re-creates `node` as it is now (structure only). */
export function nodeBody(node: EditorNode): NodeBody {
  return toDocumentNode(node);
}

/** The name of an edit for the Undo/Redo buttons. */
export function describePatch(node: EditorNode, patch: StructurePatch, nodes: ReadonlyMap<string, EditorNode>): string {
  const title = `"${node.title}"`;
  if (patch.disabled !== undefined) return `${patch.disabled ? "Disable" : "Enable"} ${title}`;
  if (patch.title !== undefined) return `Rename ${title}`;
  if (patch.inputs) {
    const before = new Set(Object.values(node.inputs ?? {}).flat());
    const after = new Set(Object.values({ ...(node.inputs ?? {}), ...patch.inputs }).flat());
    const added = [...after].filter((id) => !before.has(id));
    const removed = [...before].filter((id) => !after.has(id));
    const name = (id: string) => `"${nodes.get(id)?.title ?? id}"`;
    if (added.length && !removed.length) return `Connect ${added.map(name).join(", ")} to ${title}`;
    if (removed.length && !added.length) return `Disconnect ${removed.map(name).join(", ")} from ${title}`;
    return `Change the inputs of ${title}`;
  }
  if (patch.config) return `Change ${Object.keys(patch.config).join(", ")} of ${title}`;
  if (patch.asset) return `Edit ${title}`;
  if (patch.position) return `Move ${title}`;
  return `Edit ${title}`;
}

/** Two stacks of entries: a new entry clears what could be redone; at most `limit` entries are kept. */
export class UndoHistory {
  private done: UndoEntry[] = [];
  private undone: UndoEntry[] = [];

  constructor(private readonly limit = 100) {}

  record(entry: UndoEntry): void {
    this.done.push(entry);
    if (this.done.length > this.limit) this.done.shift();
    this.undone = [];
  }

  /** The entry the next undo reverts, if any. */
  get nextUndo(): UndoEntry | undefined {
    return this.done.at(-1);
  }

  get nextRedo(): UndoEntry | undefined {
    return this.undone.at(-1);
  }

  /** Call once the entry's undo writes were accepted: it moves to the redo stack. */
  markUndone(entry: UndoEntry): void {
    if (this.done.at(-1) !== entry) return;
    this.done.pop();
    this.undone.push(entry);
  }

  /** Call once the entry's redo writes were accepted: it moves back to the undo stack. */
  markRedone(entry: UndoEntry): void {
    if (this.undone.at(-1) !== entry) return;
    this.undone.pop();
    this.done.push(entry);
  }
}
