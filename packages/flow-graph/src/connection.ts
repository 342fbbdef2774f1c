import { INPUT_SCHEMAS } from "@vp/contracts";
import { findCycle, validateStructure, type NodeLookup } from "./index";

export interface ConnectionRequest {
  /** The upstream node (its output). */
  source: string;
  /** The downstream node and the input slot the edge ends on. */
  target: string;
  slot: string;
}

/**
 * Why an edge from `source` into `target.slot` cannot be drawn, or null when it can. The editor calls this
 * while the producer drags a connection; it is the same rule set the gateway applies when the inputs are
 * saved (validateStructure + findCycle): unknown slot, too many inputs, wrong media type, a cycle.
 */
export function connectionProblem(nodes: NodeLookup, { source, target, slot }: ConnectionRequest): string | null {
  if (source === target) return "a node cannot be an input of itself";
  const from = nodes.get(source);
  const to = nodes.get(target);
  if (!from) return `node "${source}" does not exist`;
  if (!to) return `node "${target}" does not exist`;
  const spec = INPUT_SCHEMAS[to.type]?.[slot];
  if (!spec) return `${to.type} has no input "${slot}"`;
  const current = to.inputs?.[slot] ?? [];
  if (current.includes(source)) return `"${source}" is already connected to ${slot}`;
  if (current.length >= spec.max) return `${slot} takes at most ${spec.max} input${spec.max === 1 ? "" : "s"}; it is full`;

  const candidate = { ...to, inputs: { ...to.inputs, [slot]: [...current, source] } };
  const next = new Map(nodes);
  next.set(target, candidate);
  const before = new Set(validateStructure(to, nodes).map((p) => p.message));
  const added = validateStructure(candidate, next).filter((p) => !before.has(p.message));
  if (added.length) return added[0]!.message;
  const cycle = findCycle(next);
  if (cycle) return `it would create a cycle: ${cycle.join(" -> ")}`;
  return null;
}
