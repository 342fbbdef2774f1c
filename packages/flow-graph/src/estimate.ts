import { AI_PROVIDERS, estimateAiCost, type NodeEstimate, type NodeType, type RunEstimate } from "@vp/contracts";

/**
 * Budgets: what a run will cost before it is dispatched. Browser-safe (the editor shows the same
 * numbers). AI nodes cost what the shared price table says for the provider their config names ("local" when
 * none); ffmpeg work is local and estimated at 0. Members whose result the cache already holds, or that are
 * completed and current, cost nothing.
 */
export interface EstimatedNode {
  id: string;
  title?: string;
  type: NodeType;
  inputs: Record<string, string[]>;
  config?: Record<string, unknown> | null;
  asset?: unknown;
  metadata?: Record<string, unknown> | null;
}

const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : undefined);
const str = (v: unknown) => (typeof v === "string" && v.length > 0 ? v : undefined);

/** The text of the first node connected to `slot` when it is an inline text asset. */
function inputText(node: EstimatedNode, slot: string, nodes: ReadonlyMap<string, EstimatedNode>): string | undefined {
  const id = node.inputs?.[slot]?.[0];
  const asset = id ? (nodes.get(id)?.asset as { type?: unknown; content?: unknown } | null | undefined) : undefined;
  return asset?.type === "text" && typeof asset.content === "string" ? asset.content : undefined;
}

/** US dollars one execution of the node is expected to cost. */
export function estimateNodeCost(node: EstimatedNode, nodes: ReadonlyMap<string, EstimatedNode>): number {
  if (!(node.type in AI_PROVIDERS)) return 0;
  const config = node.config ?? {};
  const provider = str(config.provider) ?? "local";
  return estimateAiCost(node.type as keyof typeof AI_PROVIDERS, provider, {
    script: inputText(node, "script", nodes) ?? str(config.script),
    speed: num(config.speed),
    modelId: str(config.modelId),
    durationSeconds: num(config.durationSeconds),
    hasImage: (node.inputs?.image?.length ?? 0) > 0,
    width: num(config.width),
    height: num(config.height),
    avatarType: str(config.avatarType),
  });
}

/** A pipeline's budget: config.maxCost in US dollars, null when it has none. */
export function maxCostOf(config: Record<string, unknown> | null | undefined): number | null {
  const v = config?.maxCost;
  return typeof v === "number" && Number.isFinite(v) && v >= 0 ? v : null;
}

const cents = (n: number) => Math.round(n * 1e6) / 1e6;
const titleOf = (n: EstimatedNode) => (typeof n.title === "string" && n.title ? { title: n.title } : {});

/**
 * The run's estimate. `cached` maps members whose key is in the cache to what their result cost when it was
 * made; `upToDate` lists members that are completed and current. maxCost null: no budget.
 */
export function estimateRun(
  nodes: Iterable<EstimatedNode>,
  memberIds: Iterable<string>,
  options: { cached?: ReadonlyMap<string, number>; upToDate?: ReadonlySet<string>; maxCost?: number | null } = {},
): RunEstimate {
  const byId = new Map<string, EstimatedNode>();
  for (const n of nodes) byId.set(n.id, n);
  const list: NodeEstimate[] = [];
  let total = 0;
  let saved = 0;
  for (const id of memberIds) {
    const n = byId.get(id);
    if (!n) continue;
    if (options.upToDate?.has(id)) {
      list.push({ nodeId: id, ...titleOf(n), type: n.type, estimatedCost: 0, source: "up-to-date" });
    } else if (options.cached?.has(id)) {
      const costSaved = cents(options.cached.get(id)!);
      saved += costSaved;
      list.push({ nodeId: id, ...titleOf(n), type: n.type, estimatedCost: 0, source: "cached", costSaved });
    } else {
      const estimatedCost = cents(estimateNodeCost(n, byId));
      total += estimatedCost;
      list.push({ nodeId: id, ...titleOf(n), type: n.type, estimatedCost, source: "execute" });
    }
  }
  const maxCost = options.maxCost ?? null;
  const estimatedTotalCost = cents(total);
  return { estimatedTotalCost, maxCost, withinBudget: maxCost === null || estimatedTotalCost <= maxCost, costSaved: cents(saved), nodes: list };
}

/**
 * Dollar amounts with as few decimals as tell them apart (2 to 6; amounts are kept to 1e-6): different
 * amounts never read the same and a non-zero amount never reads as $0.00. ($0.00013 against $0.00010, not
 * $0.00 against $0.00.)
 */
export function formatUsdApart(...amounts: number[]): string[] {
  for (let digits = 2; digits < 6; digits++) {
    const texts = amounts.map((a) => `$${a.toFixed(digits)}`);
    const zero = `$${(0).toFixed(digits)}`;
    const clear = amounts.every((a, i) => (a <= 0 || texts[i] !== zero) && amounts.every((b, j) => Math.abs(a - b) < 5e-7 || texts[i] !== texts[j]));
    if (clear) return texts;
  }
  return amounts.map((a) => `$${a.toFixed(6)}`);
}

/** One amount: cents from a cent up, else in full ($0.00013). */
export function formatUsd(amount: number): string {
  return amount >= 0.01 || amount <= 0 ? `$${Math.max(0, amount).toFixed(2)}` : exactUsd(amount);
}

/** An amount as precisely as it is kept, at least to the cent: $2.561234, $0.00013, $0.05. */
export function exactUsd(amount: number): string {
  return `$${Math.max(0, amount)
    .toFixed(6)
    .replace(/(\.\d\d\d*?)0+$/, "$1")}`;
}

/** "Estimated cost $1.20 exceeds the pipeline's budget (maxCost) of $1.00: "Presenter" (n1) $0.80, n2 $0.40". */
export function overBudgetReason(estimate: RunEstimate): string {
  const [total, budget] = formatUsdApart(estimate.estimatedTotalCost, estimate.maxCost ?? 0);
  const name = (n: RunEstimate["nodes"][number]) => (n.title && n.title !== n.nodeId ? `"${n.title}" (${n.nodeId})` : n.nodeId);
  const parts = estimate.nodes.filter((n) => n.estimatedCost > 0).map((n) => `${name(n)} ${formatUsd(n.estimatedCost)}`);
  return `Estimated cost ${total} exceeds the pipeline's budget (maxCost) of ${budget}: ${parts.join(", ")}`;
}
