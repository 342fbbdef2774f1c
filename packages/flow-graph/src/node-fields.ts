import { assetUrlProblem, CONFIG_SCHEMAS, MEDIA_TYPES, type NodeType } from "@vp/contracts";

const MEDIA_LIST = "video|audio|text|json|image";

/** One problem of a node's own fields; `path` is where in the node (`config.width`, `asset.url`). */
export interface FieldProblem {
  path: string;
  message: string;
}

/**
 * The one check of a node's own fields as they will be stored, whichever route writes them (add a node, edit
 * one, import a document): the type's config schema, an asset on asset nodes and on no other, and an asset url
 * only where it fits (media assets, without inline content). The graph (slots, media types, cycles) is
 * validateStructure's. `asset` is the whole asset after the write (cleared keys may be null).
 */
export function nodeFieldProblems(node: { type: NodeType; config: unknown; asset: unknown }): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const config = CONFIG_SCHEMAS[node.type]?.safeParse(node.config ?? {});
  if (config && !config.success) {
    for (const issue of config.error.issues) problems.push({ path: ["config", ...issue.path.map(String)].join("."), message: issue.message });
  }
  const asset = node.asset && typeof node.asset === "object" ? (node.asset as Record<string, unknown>) : null;
  if (node.type === "asset") {
    if (!asset || !MEDIA_TYPES.includes(asset.type as never)) {
      problems.push({ path: "asset", message: `asset nodes need an asset ({ type: ${MEDIA_LIST} })` });
    } else {
      const url = assetUrlProblem(asset);
      if (url) problems.push({ path: "asset.url", message: url });
    }
  } else if (asset) {
    problems.push({ path: "asset", message: `only asset nodes have an asset, not ${node.type}` });
  }
  return problems;
}

/** "config: width: Too big ...; asset.url: ...": config problems read as the config's own paths. */
export function formatFieldProblems(problems: FieldProblem[]): string {
  return problems
    .map((p) => (p.path === "config" || p.path.startsWith("config.") ? `config: ${p.path.slice(7) || "body"}: ${p.message}` : `${p.path}: ${p.message}`))
    .join("; ");
}
