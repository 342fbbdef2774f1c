import type { NodePosition, NodeType, Variable } from "@vp/contracts";
import { withTransaction, type Queryable } from "./connection";
import type { NodeRow } from "./rows";

/**
 * Structure revisions of a pipeline. Every structure write bumps the pipeline's revision in its own transaction
 * (which also locks the pipeline row, first in the lock order) and records one row: who, when, a summary and the
 * changed nodes' structure before and after. Earlier states are rebuilt from the current one by undoing the later
 * rows, so nothing but the changes is stored.
 */

/** What a node is, leaving out execution state (status, metadata, output). */
export interface NodeStructure {
  title: string;
  type: NodeType;
  inputs: Record<string, string[]>;
  config: Record<string, unknown>;
  asset: Record<string, unknown> | null;
  position: NodePosition | null;
  disabled: boolean;
}

/** The pipeline's own structure fields. */
export interface PipelineStructure {
  title: string;
  config: Record<string, unknown>;
  /** Recorded by the writes that change variables; a change that leaves it out left them as they were. */
  variables?: Variable[];
}

export interface NodeChange {
  id: string;
  /** Null: the node was added. */
  before: NodeStructure | null;
  /** Null: the node was removed. */
  after: NodeStructure | null;
}

export interface RevisionChanges {
  pipeline?: { before: PipelineStructure; after: PipelineStructure };
  nodes: NodeChange[];
}

export interface RevisionEntry {
  revision: number;
  created_at: string;
  created_by: string;
  summary: string;
}

/** Who made a structure write (the principal's subject) when the caller names nobody: a script or a test. */
export const SYSTEM_AUTHOR = "system";

export function structureOf(row: Pick<NodeRow, "title" | "type" | "inputs" | "config" | "asset" | "position" | "disabled">): NodeStructure {
  return {
    title: row.title,
    type: row.type,
    inputs: row.inputs ?? {},
    config: row.config ?? {},
    asset: row.asset ?? null,
    position: row.position ?? null,
    disabled: row.disabled === true,
  };
}

/** Bumps (and so locks) the pipeline row: its new revision, or null when the pipeline does not exist. */
export async function nextRevision(tx: Queryable, pipelineId: string): Promise<number | null> {
  const { rows } = await tx.query<{ revision: string }>(
    `UPDATE video_production_pipelines SET updated_at = now(), revision = revision + 1 WHERE id = $1 RETURNING revision`,
    [pipelineId],
  );
  return rows[0] ? Number(rows[0].revision) : null;
}

export async function recordRevision(tx: Queryable, pipelineId: string, revision: number, by: string, summary: string, changes: RevisionChanges) {
  await tx.query(`INSERT INTO video_production_pipeline_revisions (pipeline_id, revision, created_by, summary, changes) VALUES ($1, $2, $3, $4, $5::jsonb)`, [
    pipelineId,
    revision,
    by.slice(0, 200),
    summary.slice(0, 500),
    JSON.stringify(changes),
  ]);
}

/** Newest first; `before` pages back (revisions lower than it). */
export async function listRevisions(db: Queryable, pipelineId: string, options: { limit?: number; before?: number } = {}): Promise<RevisionEntry[]> {
  const { rows } = await db.query<{ revision: string; created_at: Date; created_by: string; summary: string }>(
    `SELECT revision, created_at, created_by, summary FROM video_production_pipeline_revisions
     WHERE pipeline_id = $1 AND ($2::bigint IS NULL OR revision < $2)
     ORDER BY revision DESC LIMIT $3`,
    [pipelineId, options.before ?? null, options.limit ?? 50],
  );
  return rows.map((row) => ({ revision: Number(row.revision), created_at: row.created_at.toISOString(), created_by: row.created_by, summary: row.summary }));
}

export interface StructureAt {
  /** The revision asked for. */
  revision: number;
  /** The pipeline's current revision. */
  current: number;
  pipeline: PipelineStructure;
  /** In creation order of the current pipeline, then the order removed nodes come back in. */
  nodes: Map<string, NodeStructure>;
  /** The row of `revision` itself (absent for revision 0 or one older than the recorded history). */
  entry?: RevisionEntry & { changes: RevisionChanges };
}

/**
 * The pipeline's structure as it was right after `revision`: the current structure with every later revision
 * undone, read in one snapshot. Null when the pipeline does not exist or `revision` is above its current one.
 */
export async function structureAt(db: Queryable, pipelineId: string, revision: number): Promise<StructureAt | null> {
  return withTransaction(db, async (tx) => {
    await tx.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ");
    const { rows: pipelines } = await tx.query<{ title: string; config: Record<string, unknown>; revision: string; variables: Variable[] }>(
      `SELECT title, config, revision, variables FROM video_production_pipelines WHERE id = $1`,
      [pipelineId],
    );
    const pipelineRow = pipelines[0];
    if (!pipelineRow || revision > Number(pipelineRow.revision)) return null;
    const { rows: nodeRows } = await tx.query<NodeRow>(
      `SELECT id, title, type, inputs, config, asset, position, disabled FROM video_production_nodes WHERE pipeline_id = $1 ORDER BY created_at, id`,
      [pipelineId],
    );
    const { rows: later } = await tx.query<{ revision: string; created_at: Date; created_by: string; summary: string; changes: RevisionChanges }>(
      `SELECT revision, created_at, created_by, summary, changes FROM video_production_pipeline_revisions
       WHERE pipeline_id = $1 AND revision >= $2 ORDER BY revision DESC`,
      [pipelineId, revision],
    );
    let pipeline: PipelineStructure = { title: pipelineRow.title, config: pipelineRow.config ?? {}, variables: pipelineRow.variables ?? [] };
    const nodes = new Map(nodeRows.map((row) => [row.id, structureOf(row)]));
    let entry: StructureAt["entry"];
    for (const row of later) {
      if (Number(row.revision) === revision) {
        entry = { revision, created_at: row.created_at.toISOString(), created_by: row.created_by, summary: row.summary, changes: row.changes };
        continue;
      }
      // A change that did not record variables (a rename, a settings change) left them as they were.
      if (row.changes.pipeline) pipeline = { ...pipeline, ...row.changes.pipeline.before };
      for (const change of row.changes.nodes) {
        if (change.before) nodes.set(change.id, change.before);
        else nodes.delete(change.id);
      }
    }
    return { revision, current: Number(pipelineRow.revision), pipeline, nodes, entry };
  });
}

/** Which structure fields differ between two states of a node ("config", "title", …). */
export function changedFields(before: NodeStructure, after: NodeStructure): (keyof NodeStructure)[] {
  return (Object.keys(after) as (keyof NodeStructure)[]).filter((key) => JSON.stringify(before[key]) !== JSON.stringify(after[key]));
}
