import {
  DEFAULT_PIPELINE_LIMITS,
  DocumentNode,
  PIPELINE_DOCUMENT_FORMAT,
  PIPELINE_DOCUMENT_VERSION,
  PipelineDocument,
  Title,
  Variables,
  type MediaType,
  type NodePosition,
  type SerializedNode,
  type Variable,
} from "@vp/contracts";
import { findCycle, lookup, validateStructure, type GraphNode } from "./index";
import { nodeFieldProblems } from "./node-fields";
import { variableProblems } from "./variables";

/** One problem of an imported document; `node` names the node it belongs to (its id, or `#<n>` if it has none). */
export interface DocumentProblem {
  node?: string;
  /** Where in the node (or document): `inputs.segments`, `config.width`, `title`. */
  path?: string;
  message: string;
}

export type DocumentValidation = { ok: true; document: PipelineDocument } | { ok: false; problems: DocumentProblem[] };

interface ZodLikeIssue {
  path: PropertyKey[];
  message: string;
}

const pathOf = (path: PropertyKey[]) => path.map(String).join(".");

/**
 * Validates a whole pipeline document and reports every problem, node by node, before anything is
 * created: the envelope, each node's fields and config (the contracts' schemas), asset rules, duplicate
 * ids, and the graph (slots, counts, media types, missing inputs, cycles) with the same rules the
 * gateway and the scheduler apply.
 */
export function validatePipelineDocument(raw: unknown, { maxNodes = DEFAULT_PIPELINE_LIMITS.maxNodes }: { maxNodes?: number } = {}): DocumentValidation {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    return { ok: false, problems: [{ message: "the document must be a JSON object" }] };
  }
  const doc = raw as Record<string, unknown>;
  const problems = envelopeProblems(doc);

  if (!Array.isArray(doc.nodes)) {
    problems.push({ path: "nodes", message: "must be a list of nodes" });
    return { ok: false, problems };
  }
  if (doc.nodes.length > maxNodes) {
    problems.push({ path: "nodes", message: `a pipeline has at most ${maxNodes} nodes; this document has ${doc.nodes.length}` });
    return { ok: false, problems };
  }

  const parsed = parseNodes(doc.nodes, problems);
  problems.push(...graphProblems(parsed));
  problems.push(...documentVariableProblems(doc.variables, parsed));

  if (problems.length) return { ok: false, problems: inDocumentOrder(problems, doc.nodes) };
  // Everything checked above; the strict parse also applies Title's trimming.
  return { ok: true, document: PipelineDocument.parse(raw) };
}

/** The name a problem of the node at `index` is reported under: its id, or `#<n>` when it has none. */
function nodeName(rawNode: unknown, index: number): string {
  const rawId = (rawNode as { id?: unknown } | null)?.id;
  return typeof rawId === "string" && rawId ? rawId : `#${index + 1}`;
}

/** Problems of the document's own fields: format, version, title, and fields it should not have. */
function envelopeProblems(doc: Record<string, unknown>): DocumentProblem[] {
  const problems: DocumentProblem[] = [];
  if (doc.format !== PIPELINE_DOCUMENT_FORMAT) {
    problems.push({ path: "format", message: `must be "${PIPELINE_DOCUMENT_FORMAT}" (got ${JSON.stringify(doc.format) ?? "nothing"})` });
  }
  if (doc.version !== PIPELINE_DOCUMENT_VERSION) {
    problems.push({ path: "version", message: `must be ${PIPELINE_DOCUMENT_VERSION} (got ${JSON.stringify(doc.version) ?? "nothing"})` });
  }
  const title = Title.safeParse(doc.title);
  if (!title.success) problems.push({ path: "title", message: title.error.issues.map((i) => i.message).join("; ") });
  const known = new Set(["format", "version", "title", "variables", "nodes"]);
  for (const key of Object.keys(doc)) if (!known.has(key)) problems.push({ path: key, message: "unknown field" });
  return problems;
}

/** The nodes that parse, with unique ids and valid fields; the problems of the others go to `problems`. */
function parseNodes(rawNodes: unknown[], problems: DocumentProblem[]): DocumentNode[] {
  const parsed: DocumentNode[] = [];
  const seen = new Map<string, number>();
  rawNodes.forEach((rawNode, index) => {
    const result = DocumentNode.safeParse(rawNode);
    if (!result.success) {
      const name = nodeName(rawNode, index);
      for (const issue of result.error.issues as ZodLikeIssue[]) {
        problems.push({ node: name, path: pathOf(issue.path) || undefined, message: issue.message });
      }
      return;
    }
    const node = result.data;
    const first = seen.get(node.id);
    if (first !== undefined) {
      problems.push({ node: node.id, path: "id", message: `duplicate id (also node #${first + 1})` });
      return;
    }
    seen.set(node.id, index);

    // The same field rules as adding or editing a node through the API.
    for (const problem of nodeFieldProblems({ type: node.type, config: node.config ?? {}, asset: node.asset ?? null })) {
      problems.push({ node: node.id, ...problem });
    }
    parsed.push(node);
  });
  return parsed;
}

/** The graph's problems over every node that parsed (so a missing input is reported even next to other problems). */
function graphProblems(parsed: DocumentNode[]): DocumentProblem[] {
  const problems: DocumentProblem[] = [];
  const graph = lookup(parsed.map(toGraphNode));
  for (const node of graph.values()) {
    for (const problem of validateStructure(node, graph)) {
      problems.push({ node: node.id, path: problem.slot ? `inputs.${problem.slot}` : "inputs", message: problem.message });
    }
  }
  const cycle = findCycle(graph);
  if (cycle) problems.push({ node: cycle[0], path: "inputs", message: `inputs form a cycle: ${cycle.join(" -> ")}` });
  return problems;
}

/**
 * The document's variables (optional: absent means none) and whether the nodes' placeholders and bound assets fit
 * them, with the rules of the API's variable and node writes.
 */
function documentVariableProblems(raw: unknown, parsed: DocumentNode[]): DocumentProblem[] {
  if (raw === undefined) return variableProblems(parsed, []).map((p) => ({ node: p.nodeId, path: p.slot, message: p.message }));
  const declared = Variables.safeParse(raw);
  if (!declared.success) return declared.error.issues.map((issue) => ({ path: ["variables", ...issue.path].map(String).join("."), message: issue.message }));
  return variableProblems(parsed, declared.data).map((p) => ({ node: p.nodeId, path: p.slot, message: p.message }));
}

/** Node by node, in document order (the document's own problems first); stable within a node. */
function inDocumentOrder(problems: DocumentProblem[], rawNodes: unknown[]): DocumentProblem[] {
  const order = new Map<string, number>();
  rawNodes.forEach((rawNode, index) => {
    const name = nodeName(rawNode, index);
    if (!order.has(name)) order.set(name, index);
  });
  const rank = (p: DocumentProblem) => (p.node === undefined ? -1 : (order.get(p.node) ?? Number.MAX_SAFE_INTEGER));
  return problems
    .map((p, i) => ({ p, i }))
    .sort((a, b) => rank(a.p) - rank(b.p) || a.i - b.i)
    .map(({ p }) => p);
}

function toGraphNode(node: DocumentNode): GraphNode {
  return { id: node.id, type: node.type, inputs: node.inputs ?? {}, status: "pending", asset: node.asset ?? null };
}

export function formatDocumentProblems(problems: DocumentProblem[]): string {
  return problems.map(describeProblem).join("; ");
}

export function describeProblem(p: DocumentProblem): string {
  const where = [p.node !== undefined ? `node "${p.node}"` : undefined, p.path].filter(Boolean).join(" ");
  return where ? `${where}: ${p.message}` : p.message;
}

/** A node as the document carries it (and as the editor re-creates it): structure only, no storage key or state. */
export type DocumentSource = Pick<SerializedNode, "id" | "title" | "type" | "inputs" | "config" | "asset"> & {
  position?: NodePosition | null;
  disabled?: boolean;
};

/**
 * One node of a pipeline document: an asset keeps its media type and inline content, never its storage key; config
 * is copied as is; its position is kept so the canvas looks the same; a disabled node stays so.
 */
export function toDocumentNode(node: DocumentSource): DocumentNode {
  const out: DocumentNode = { id: node.id, title: node.title, type: node.type, inputs: node.inputs ?? {}, config: node.config ?? {} };
  const asset = node.asset as { type?: MediaType; content?: unknown; url?: unknown } | null;
  if (node.type === "asset" && asset?.type) {
    out.asset = { type: asset.type };
    if (typeof asset.content === "string") out.asset.content = asset.content;
    // A URL is where the media comes from, not a storage key: it travels with the document.
    if (typeof asset.url === "string") out.asset.url = asset.url;
    const bound = (node.asset as { variable?: unknown }).variable;
    if (typeof bound === "string") out.asset.variable = bound;
  }
  if (node.position) out.position = { x: node.position.x, y: node.position.y };
  if (node.disabled) out.disabled = true;
  return out;
}

/** The document of a pipeline: structure only (see toDocumentNode), with its variables when it has any. */
export function toPipelineDocument(pipeline: { title: string; variables?: readonly Variable[] }, nodes: ReadonlyArray<DocumentSource>): PipelineDocument {
  return {
    format: PIPELINE_DOCUMENT_FORMAT,
    version: PIPELINE_DOCUMENT_VERSION,
    title: pipeline.title,
    ...(pipeline.variables?.length ? { variables: [...pipeline.variables] } : {}),
    nodes: nodes.map(toDocumentNode),
  };
}
