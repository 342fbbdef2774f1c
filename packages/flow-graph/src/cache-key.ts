import { createHash } from "node:crypto";
import { CONFIG_SCHEMAS, NODE_CATALOG, NODE_TYPES, type NodeStatus, type NodeType, type RunEstimate } from "@vp/contracts";
import { estimateRun } from "./estimate";
import { nodeName, type GraphNode } from "./index";
import { blockedByDisabled, downstreamIds, selectRunMembers } from "./pipeline-check";

/**
 * Content-addressed cache keys. A node's key is the sha256 of what decides its result:
 *   - the node type and the version of its work (the catalog's workVersion: bumped when its executor's output changes),
 *   - its config, normalised (schema defaults applied, keys sorted) — provider and model live there,
 *   - for an asset, its asset descriptor (uploaded file key, inline text, type),
 *   - for every input slot, in order, the content of the inputs' outputs (output.contentHash, the sha256 of the
 *     stored bytes; for an output without one, the sha256 of the output record itself).
 * Title, position and ids are not part of it, so the same work in another pipeline has the same key.
 *
 * Node-only (node:crypto): the editor imports the browser-safe rest of @vp/flow-graph, not this file.
 */

/** Each type's work version, from the catalog: bumped when its executor starts producing different results. */
export const WORK_VERSIONS: Record<NodeType, number> = Object.fromEntries(NODE_TYPES.map((t) => [t, NODE_CATALOG[t].workVersion])) as Record<NodeType, number>;

export interface KeyedNode {
  id: string;
  type: NodeType;
  inputs: Record<string, string[]>;
  config: Record<string, unknown> | null;
  asset?: unknown;
  status: NodeStatus;
  metadata?: Record<string, unknown> | null;
  output?: Record<string, unknown> | null;
  disabled?: boolean;
}

/** JSON with object keys sorted at every level and undefined dropped: equal values, equal text. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value ?? null);
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? "null" : canonicalJson(v))).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
}

export const sha256 = (text: string | Uint8Array): string => createHash("sha256").update(text).digest("hex");

/** The config as the executor will read it: the type's schema applied (defaults filled); the raw config if it does not parse. */
export function normaliseConfig(type: NodeType, config: Record<string, unknown> | null): unknown {
  const schema = (CONFIG_SCHEMAS as Record<string, { safeParse(v: unknown): { success: boolean; data?: unknown } } | undefined>)[type];
  const parsed = schema?.safeParse(config ?? {});
  return parsed?.success ? parsed.data : (config ?? {});
}

/** What an output contributes to its dependants' keys: its bytes' hash when known. */
export function outputIdentity(output: Record<string, unknown> | null | undefined): string {
  const hash = output?.contentHash;
  if (typeof hash === "string" && /^[a-f0-9]{64}$/.test(hash)) return hash;
  return sha256(canonicalJson(output ?? null));
}

/**
 * The node's cache key from its own row and its inputs' current outputs; null when an input is missing or not
 * completed (nothing to key on yet).
 */
export function cacheKey(node: KeyedNode, nodes: ReadonlyMap<string, KeyedNode>): string | null {
  const inputs: Record<string, string[]> = {};
  for (const [slot, ids] of Object.entries(node.inputs ?? {})) {
    const list: string[] = [];
    for (const id of ids) {
      const upstream = nodes.get(id);
      if (!upstream || upstream.status !== "completed" || !upstream.output) return null;
      list.push(outputIdentity(upstream.output));
    }
    inputs[slot] = list;
  }
  return sha256(
    canonicalJson({
      key: 1,
      type: node.type,
      work: WORK_VERSIONS[node.type] ?? 0,
      config: normaliseConfig(node.type, node.config),
      asset: node.type === "asset" ? (node.asset ?? null) : undefined,
      inputs,
    }),
  );
}

/**
 * Completed nodes whose result no longer matches the graph: their key moved (a config edit, an input that was
 * made again differently) or an input is not completed or is itself stale. A run makes them again (or finds the
 * new key in the cache). A completed node without a recorded key (made before keys existed) counts as current
 * unless an input is stale. Linear in nodes + edges.
 */
export function staleNodes(nodes: Iterable<KeyedNode>): Set<string> {
  const byId = new Map<string, KeyedNode>();
  for (const n of nodes) byId.set(n.id, n);
  const memo = new Map<string, boolean>();
  const visit = (id: string): boolean => {
    const known = memo.get(id);
    if (known !== undefined) return known;
    memo.set(id, false); // a cycle (refused by the graph check anyway) ends here
    const n = byId.get(id);
    let stale = false;
    if (n && n.status === "completed") {
      for (const up of new Set(Object.values(n.inputs ?? {}).flat())) {
        const u = byId.get(up);
        if (!u || u.status !== "completed" || visit(up)) stale = true;
      }
      const recorded = n.metadata?.cacheKey;
      if (!stale && typeof recorded === "string") stale = cacheKey(n, byId) !== recorded;
    }
    memo.set(id, stale);
    return stale;
  };
  const out = new Set<string>();
  for (const id of byId.keys()) if (visit(id)) out.add(id);
  return out;
}

/**
 * Keys that can be known before a run starts: members whose inputs are all completed and current (their key
 * depends on nothing the run will make). The others are keyed when their inputs complete.
 */
export function keysKnownNow(nodes: Iterable<KeyedNode>, memberIds: Iterable<string>, stale: ReadonlySet<string>): Map<string, string> {
  const byId = new Map<string, KeyedNode>();
  for (const n of nodes) byId.set(n.id, n);
  const out = new Map<string, string>();
  for (const id of memberIds) {
    const n = byId.get(id);
    if (!n) continue;
    const ups = Object.values(n.inputs ?? {}).flat();
    if (ups.some((u) => stale.has(u) || byId.get(u)?.status !== "completed")) continue;
    const key = cacheKey(n, byId);
    if (key) out.set(id, key);
  }
  return out;
}

/**
 * Who runs. Run all: every node (completed and current ones are members that are already done, so the run's
 * summary accounts for the whole pipeline). Run to here / retry: the targets and whatever they need that is
 * not completed and current; retry with downstream adds the target's dependants, completed ones included
 * (they are re-keyed once the target is made again, and made again only if their key moved).
 */
export function runMembers(
  rows: KeyedNode[],
  stale: ReadonlySet<string>,
  cmd: { targetNodeId?: string; retry?: boolean; downstream?: boolean; force?: boolean },
): string[] {
  // Disabled nodes and everything downstream of them are left out; a target among them runs nothing.
  const blocked = blockedByDisabled(rows);
  if (!cmd.targetNodeId) return rows.filter((r) => !blocked.has(r.id)).map((r) => r.id);
  if (blocked.has(cmd.targetNodeId)) return [];
  const targets = [cmd.targetNodeId, ...(cmd.retry && cmd.downstream ? downstreamIds(rows, cmd.targetNodeId).filter((id) => !blocked.has(id)) : [])];
  // Forced: everything upstream of the targets is made again too, so no completed node ends the walk.
  const redo = new Set(cmd.force ? rows.map((r) => r.id) : [...stale, ...targets.slice(1)]);
  return selectRunMembers(
    rows.map((r) => (redo.has(r.id) && r.status === "completed" ? { ...r, status: "pending" as const } : r)),
    targets,
  );
}

/** Why runMembers chose nothing: a target that is (or is fed by) a disabled node, every node switched off, or no nodes. */
export function nothingToRunReason(rows: Array<KeyedNode & { title?: string }>, cmd: { targetNodeId?: string }): string {
  const blocked = blockedByDisabled(rows);
  const nodes = new Map(rows.map((r) => [r.id, r as GraphNode]));
  const name = (id: string) => nodeName(id, nodes);
  if (cmd.targetNodeId && blocked.has(cmd.targetNodeId)) {
    const by = blocked.get(cmd.targetNodeId)!;
    const target = name(cmd.targetNodeId);
    const subject = target.charAt(0).toUpperCase() + target.slice(1);
    return by === cmd.targetNodeId
      ? `${subject} is disabled: enable it to run it`
      : `${subject} cannot run: ${name(by)} upstream of it is disabled (enable it first)`;
  }
  if (rows.length > 0) return "Nothing to run: every node is disabled or downstream of a disabled node";
  return "Nothing to run: the pipeline has no nodes";
}

/**
 * The run's estimate: members already completed and current cost nothing; members whose key is known now and
 * in the cache cost nothing (their original cost is saved); the rest cost their type's estimate.
 * `costsOf` reads the cache: key -> what the stored result cost.
 */
export async function estimateMembers(
  rows: KeyedNode[],
  members: string[],
  stale: ReadonlySet<string>,
  options: { force: boolean; maxCost: number | null; costsOf(keys: string[]): Promise<Map<string, number>> },
): Promise<RunEstimate> {
  const byId = new Map(rows.map((r) => [r.id, r]));
  // A forced run makes every member again: nothing is up to date or taken from the cache.
  const upToDate = new Set(options.force ? [] : members.filter((id) => !stale.has(id) && byId.get(id)?.status === "completed"));
  const cached = new Map<string, number>();
  if (!options.force) {
    const keys = keysKnownNow(
      rows,
      members.filter((id) => !upToDate.has(id)),
      stale,
    );
    const costs = await options.costsOf([...new Set(keys.values())]);
    for (const [id, k] of keys) {
      const cost = costs.get(k);
      if (cost !== undefined) cached.set(id, cost);
    }
  }
  return estimateRun(rows, members, { cached, upToDate, maxCost: options.maxCost });
}
