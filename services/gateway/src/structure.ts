import type { Context } from "hono";
import { broadcast } from "@vp/bus";
import type { StructureChanged } from "@vp/contracts";
import { StaleRevisionError, SYSTEM_AUTHOR, toSerializedNode, type NodeRow, type Queryable } from "@vp/db";
import type { GatewayDeps } from "./deps";
import { HttpError } from "./errors";

/** Who makes a structure write: the signed-in principal's subject (recorded in the revision and the event). */
export function authorOf(c: Context): string {
  return (c.get("principal") as { subject?: string } | undefined)?.subject ?? SYSTEM_AUTHOR;
}

/** The editor tab that makes a write (X-Vp-Client), echoed in the structure event; anything else is ignored. */
export function clientOf(c: Context): string | undefined {
  const value = c.req.header("x-vp-client");
  return value && /^[A-Za-z0-9_-]{1,64}$/.test(value) ? value : undefined;
}

/**
 * The node revision a conditional write is based on, from `If-Match` (`"12"`, `W/"12"` or `12`); undefined
 * without the header (an unconditional write). `*` matches any revision.
 */
export function ifMatchRevision(c: Context): number | undefined {
  const header = c.req.header("if-match")?.trim();
  if (!header || header === "*") return undefined;
  const match = /^(?:W\/)?"?(\d{1,15})"?$/.exec(header);
  if (!match) throw new HttpError(400, `If-Match must be the node's revision as its ETag gives it (e.g. "12"), got ${header.slice(0, 40)}`);
  return Number(match[1]);
}

/** A node's ETag: its revision, what a later conditional write names in If-Match. */
export const etagOf = (node: { revision?: number | string }) => `"${Number(node.revision ?? 0)}"`;

/**
 * Tells every gateway replica's open event streams of the pipeline that its structure changed, once the write
 * has committed. A lost broadcast costs no data: a client that then sees a revision gap, or reconnects, reloads.
 */
export function announceStructure(
  deps: Pick<GatewayDeps, "bus" | "topology" | "logger">,
  change: {
    pipelineId: string;
    revision: number;
    by: string;
    client?: string;
    nodes?: Array<{ id: string; row: NodeRow | null }>;
    pipeline?: StructureChanged["pipeline"];
  },
): void {
  const event: StructureChanged = {
    v: 1,
    kind: "structure",
    pipelineId: change.pipelineId,
    revision: change.revision,
    by: change.by,
    ...(change.client ? { client: change.client } : {}),
    at: new Date().toISOString(),
    ...(change.pipeline ? { pipeline: change.pipeline } : {}),
    nodes: (change.nodes ?? []).map(({ id, row }) => ({ id, node: row ? toSerializedNode(row) : null })),
  };
  try {
    broadcast(deps.bus, deps.topology.messages.structure(change.pipelineId), event);
  } catch (error) {
    deps.logger.warn(
      { err: error, pipelineId: change.pipelineId, revision: change.revision },
      "structure change not announced; open editors reload on their next gap",
    );
  }
}

/**
 * A conditional write refused because the node changed since the revision it was based on: 409 with who changed it,
 * and the node as it is now, so the editor can show both instead of overwriting.
 */
export async function conflictOf(reader: Queryable, pipelineId: string, error: unknown): Promise<unknown> {
  if (!(error instanceof StaleRevisionError) || !error.current) return error;
  const current = error.current;
  const { rows } = await reader.query<{ created_by: string }>(
    `SELECT created_by FROM video_production_pipeline_revisions WHERE pipeline_id = $1 AND revision = $2`,
    [pipelineId, current.revision],
  );
  const by = rows[0]?.created_by;
  return new HttpError(409, `"${current.title}" was changed${by ? ` by ${by}` : ""} since you loaded it; your change was not saved`, {
    node: toSerializedNode(current),
    revision: Number(current.revision),
    ...(by ? { by } : {}),
  });
}
