import type { NodePosition, NodeType, PipelineLimits, SerializedPipeline, Variable } from "@vp/contracts";
import { withTransaction, type Queryable } from "./connection";
import { ConflictError, NotFoundError, PG, PipelineLimitError, StaleRevisionError, ValidationError, pgCode } from "./errors";
import {
  changedFields,
  nextRevision,
  recordRevision,
  structureOf,
  SYSTEM_AUTHOR,
  type NodeStructure,
  type PipelineStructure,
  type RevisionChanges,
  type StructureAt,
} from "./revisions";
import { NODE_COLUMNS, PIPELINE_COLUMNS, toSerializedPipeline, type NodeRow, type PipelineRow } from "./rows";
import { nodeFilesPrefix, pipelineFilesPrefix, recordGarbagePrefix } from "./storage-files";

/**
 * Editor queries (run as vp_editor): structure columns only. Every JSONB write is a partial merge
 * (`COALESCE(col, '{}') || $patch`), never a whole-column write. Every structure write first bumps
 * the pipeline's revision and updated_at (locking the pipeline row), the same lock order as the
 * state-writer (pipeline row, then node row), so the two never deadlock, and records the revision
 * (revisions.ts) in the same transaction.
 */

/** Who makes a write (recorded in the revision); a conditional node write also names the revision it was based on. */
export interface WriteOptions {
  by?: string;
}
export interface ConditionalWriteOptions extends WriteOptions {
  /** The node's revision the write was based on (If-Match): a node changed since is not written (StaleRevisionError). */
  ifRevision?: number;
}

function json(value: unknown): string | null {
  return value === undefined ? null : JSON.stringify(value);
}

function mapWriteError(err: unknown, what: string): never {
  switch (pgCode(err)) {
    case PG.uniqueViolation:
      throw new ConflictError(`${what} already exists`, { cause: err });
    case PG.foreignKeyViolation:
      throw new NotFoundError("Pipeline not found", { cause: err });
    case PG.checkViolation:
    case PG.notNullViolation:
    case PG.invalidText:
    case PG.untranslatableCharacter:
      throw new ValidationError(`Invalid ${what.toLowerCase()}: ${(err as Error).message}`, { cause: err });
    default:
      throw err;
  }
}

/**
 * Refuses (PipelineLimitError, the transaction rolls back) a write that left the pipeline past its limits. Run
 * inside the write's transaction after the write, with the pipeline row locked (nextRevision, or the import's
 * own new row): two writers of one pipeline take turns, so neither can slip past a limit the other reached.
 */
async function checkLimits(tx: Queryable, pipelineId: string, limits: PipelineLimits | undefined): Promise<void> {
  if (!limits) return;
  const { rows } = await tx.query<{ nodes: number; bytes: string }>(
    `SELECT count(*)::int AS nodes,
            COALESCE(sum(octet_length(title) + octet_length(inputs::text) + octet_length(config::text) + COALESCE(octet_length(asset::text), 0)), 0)::text AS bytes
     FROM video_production_nodes WHERE pipeline_id = $1`,
    [pipelineId],
  );
  const nodes = rows[0]?.nodes ?? 0;
  const bytes = Number(rows[0]?.bytes ?? 0);
  if (nodes > limits.maxNodes) {
    throw new PipelineLimitError(`A pipeline has at most ${limits.maxNodes} nodes; this write would make it ${nodes}`, "nodes", limits.maxNodes, nodes);
  }
  if (bytes > limits.maxStructureBytes) {
    throw new PipelineLimitError(
      `A pipeline's structure (titles, inputs, config and assets of its nodes) is at most ${limits.maxStructureBytes} bytes; this write would make it ${bytes} bytes`,
      "structureBytes",
      limits.maxStructureBytes,
      bytes,
    );
  }
}

export interface CreatePipelineInput {
  id: string;
  title: string;
  version?: string;
  config?: Record<string, unknown>;
  /** Declared variables (the caller validates them); none by default. */
  variables?: Variable[];
}

export async function createPipeline(db: Queryable, input: CreatePipelineInput): Promise<SerializedPipeline> {
  try {
    const { rows } = await db.query<PipelineRow>(
      `INSERT INTO video_production_pipelines (id, title, version, config, variables)
       VALUES ($1, $2, COALESCE($3, '1.0'), COALESCE($4::jsonb, '{}'::jsonb), COALESCE($5::jsonb, '[]'::jsonb))
       RETURNING ${PIPELINE_COLUMNS}`,
      [input.id, input.title, input.version ?? null, json(input.config), json(input.variables)],
    );
    return toSerializedPipeline(rows[0]!);
  } catch (err) {
    mapWriteError(err, `Pipeline ${input.id}`);
  }
}

export interface UpdatePipelineInput {
  title?: string;
  version?: string;
  /** Merged into config (top-level keys replaced). */
  configPatch?: Record<string, unknown>;
}

/**
 * Partial update of the pipeline's own fields, recorded as a revision when its title or config changes. Null when
 * the pipeline does not exist.
 */
export async function updatePipeline(db: Queryable, id: string, patch: UpdatePipelineInput, options: WriteOptions = {}): Promise<SerializedPipeline | null> {
  const unchanged = Symbol("unchanged");
  let current: PipelineRow | undefined;
  try {
    return await withTransaction(db, async (tx) => {
      const revision = await nextRevision(tx, id);
      if (revision === null) return null;
      const { rows: beforeRows } = await tx.query<PipelineRow>(`SELECT ${PIPELINE_COLUMNS} FROM video_production_pipelines WHERE id = $1`, [id]);
      const { rows } = await tx.query<PipelineRow>(
        `UPDATE video_production_pipelines
         SET title = COALESCE($2, title),
             version = COALESCE($3, version),
             config = COALESCE(config, '{}'::jsonb) || COALESCE($4::jsonb, '{}'::jsonb)
         WHERE id = $1
         RETURNING ${PIPELINE_COLUMNS}`,
        [id, patch.title ?? null, patch.version ?? null, json(patch.configPatch)],
      );
      const row = rows[0]!;
      const before = { title: beforeRows[0]!.title, config: beforeRows[0]!.config ?? {} };
      const after = { title: row.title, config: row.config ?? {} };
      const summary =
        before.title !== after.title
          ? `Renamed the pipeline to ${after.title}`
          : JSON.stringify(before.config) !== JSON.stringify(after.config)
            ? "Changed the pipeline's settings"
            : row.version !== beforeRows[0]!.version
              ? `Set the pipeline's version to ${row.version}`
              : null;
      if (!summary) {
        current = { ...beforeRows[0]!, revision: revision - 1 };
        throw unchanged; // roll back the revision bump: nothing changed
      }
      await recordRevision(tx, id, revision, options.by ?? SYSTEM_AUTHOR, summary, { pipeline: { before, after }, nodes: [] });
      return toSerializedPipeline(row);
    });
  } catch (err) {
    if (err === unchanged && current) return toSerializedPipeline(current);
    mapWriteError(err, `Pipeline ${id}`);
  }
}

/**
 * Replaces the pipeline's variable declarations (the caller validated them against its nodes) as a new revision
 * ("Changed the pipeline's variables"). Declarations equal to the current ones write nothing and record no revision.
 * Null when the pipeline does not exist.
 */
export async function updatePipelineVariables(
  db: Queryable,
  id: string,
  variables: readonly Variable[],
  options: WriteOptions = {},
): Promise<SerializedPipeline | null> {
  const unchanged = Symbol("unchanged");
  let current: PipelineRow | undefined;
  try {
    return await withTransaction(db, async (tx) => {
      const revision = await nextRevision(tx, id);
      if (revision === null) return null;
      const { rows: beforeRows } = await tx.query<PipelineRow>(`SELECT ${PIPELINE_COLUMNS} FROM video_production_pipelines WHERE id = $1`, [id]);
      const before = beforeRows[0]!;
      if (JSON.stringify(before.variables ?? []) === JSON.stringify(variables)) {
        current = { ...before, revision: revision - 1 };
        throw unchanged; // roll back the revision bump: nothing changed
      }
      const { rows } = await tx.query<PipelineRow>(`UPDATE video_production_pipelines SET variables = $2::jsonb WHERE id = $1 RETURNING ${PIPELINE_COLUMNS}`, [
        id,
        JSON.stringify(variables),
      ]);
      const row = rows[0]!;
      const structure = (r: PipelineRow) => ({ title: r.title, config: r.config ?? {}, variables: r.variables ?? [] });
      await recordRevision(tx, id, revision, options.by ?? SYSTEM_AUTHOR, "Changed the pipeline's variables", {
        pipeline: { before: structure(before), after: structure(row) },
        nodes: [],
      });
      return toSerializedPipeline(row);
    });
  } catch (err) {
    if (err === unchanged && current) return toSerializedPipeline(current);
    mapWriteError(err, `Pipeline ${id}`);
  }
}

/**
 * Deletes the pipeline (its nodes and runs cascade) and records its stored files as garbage, in one transaction.
 * False when it did not exist.
 */
export async function deletePipeline(db: Queryable, id: string): Promise<boolean> {
  return withTransaction(db, async (tx) => {
    const { rowCount } = await tx.query(`DELETE FROM video_production_pipelines WHERE id = $1`, [id]);
    if (!rowCount) return false;
    await recordGarbagePrefix(tx, pipelineFilesPrefix(id), id);
    return true;
  });
}

export interface CreateNodeInput {
  pipelineId: string;
  id: string;
  title: string;
  type: NodeType;
  inputs?: Record<string, string[]>;
  config?: Record<string, unknown>;
  asset?: Record<string, unknown> | null;
  /** Canvas position (editor only). */
  position?: NodePosition | null;
  /** Switched off: runs skip it (default false). */
  disabled?: boolean;
  /** Who adds it (recorded in the revision). */
  by?: string;
}

/**
 * Inserts a pending node (status, metadata, output take their defaults) as a new revision of the pipeline.
 * With `limits`, refuses (PipelineLimitError) a node that takes the pipeline past them.
 */
export async function createNode(db: Queryable, input: CreateNodeInput, limits?: PipelineLimits): Promise<NodeRow> {
  return withTransaction(db, async (tx) => {
    const revision = await nextRevision(tx, input.pipelineId);
    if (revision === null) throw new NotFoundError(`Pipeline ${input.pipelineId} not found`);
    try {
      const row = await insertNode(tx, input.pipelineId, revision, { ...input, inputs: input.inputs ?? {}, config: input.config ?? {} });
      await checkLimits(tx, input.pipelineId, limits);
      await recordRevision(tx, input.pipelineId, revision, input.by ?? SYSTEM_AUTHOR, `Added ${row.title}`, {
        nodes: [{ id: row.id, before: null, after: structureOf(row) }],
      });
      return row;
    } catch (err) {
      if (err instanceof PipelineLimitError) throw err;
      mapWriteError(err, `Node ${input.id}`);
    }
  });
}

async function insertNode(
  tx: Queryable,
  pipelineId: string,
  revision: number,
  node: Omit<CreateNodeInput, "pipelineId" | "by"> | (NodeStructure & { id: string }),
): Promise<NodeRow> {
  const { rows } = await tx.query<NodeRow>(
    `INSERT INTO video_production_nodes (id, pipeline_id, title, type, inputs, config, asset, position, disabled, revision)
     VALUES ($1, $2, $3, $4, COALESCE($5::jsonb, '{}'::jsonb), COALESCE($6::jsonb, '{}'::jsonb), $7::jsonb, $8::jsonb, $9, $10)
     RETURNING ${NODE_COLUMNS}`,
    [
      node.id,
      pipelineId,
      node.title,
      node.type,
      json(node.inputs),
      json(node.config),
      node.asset == null ? null : JSON.stringify(node.asset),
      node.position == null ? null : JSON.stringify(node.position),
      node.disabled === true,
      revision,
    ],
  );
  return rows[0]!;
}

export interface UpdateNodeStructureInput {
  title?: string;
  type?: NodeType;
  /** Merged into inputs: each given slot replaces that slot's list. */
  inputsPatch?: Record<string, string[]>;
  /** Slots to remove from inputs (applied before inputsPatch). */
  inputsRemove?: readonly string[];
  /** Merged into config (top-level keys). */
  configPatch?: Record<string, unknown>;
  /** Top-level config keys to remove (applied before configPatch). */
  configRemove?: readonly string[];
  /** Merged into asset (NULL asset is treated as {}). */
  assetPatch?: Record<string, unknown>;
  /** Replaces the canvas position (its own column: moving a node is not a config change). */
  position?: NodePosition;
  /** Switches the node off (true) or on (false). */
  disabled?: boolean;
}

/**
 * Partial structure update of one node as a new revision of the pipeline (lock order: the pipeline row, then
 * the node). Null when the pipeline or node does not exist. With `options.ifRevision`, a node whose revision
 * differs is left as it is (StaleRevisionError with the current node). A patch that changes nothing writes
 * nothing and records no revision. With `limits`, refuses (PipelineLimitError) an update that takes the pipeline
 * past them (a move alone changes no structure and is not checked).
 */
export async function updateNodeStructure(
  db: Queryable,
  pipelineId: string,
  nodeId: string,
  patch: UpdateNodeStructureInput,
  limits?: PipelineLimits,
  options: ConditionalWriteOptions = {},
): Promise<NodeRow | null> {
  const missing = Symbol("missing");
  let unchanged: NodeRow | undefined;
  try {
    return await withTransaction(db, async (tx) => {
      const revision = await nextRevision(tx, pipelineId);
      if (revision === null) throw missing;
      const current = await lockedNode(tx, pipelineId, nodeId, options.ifRevision);
      if (!current) throw missing;
      try {
        const { rows } = await tx.query<NodeRow>(
          `UPDATE video_production_nodes
           SET title = COALESCE($3, title),
               type = COALESCE($4, type),
               inputs = (COALESCE(inputs, '{}'::jsonb) - COALESCE($6::text[], '{}'::text[])) || COALESCE($5::jsonb, '{}'::jsonb),
               config = (COALESCE(config, '{}'::jsonb) - COALESCE($8::text[], '{}'::text[])) || COALESCE($7::jsonb, '{}'::jsonb),
               asset = CASE WHEN $9::jsonb IS NULL THEN asset ELSE COALESCE(asset, '{}'::jsonb) || $9::jsonb END,
               position = COALESCE($10::jsonb, position),
               disabled = COALESCE($11::boolean, disabled),
               revision = $12
           WHERE pipeline_id = $1 AND id = $2
           RETURNING ${NODE_COLUMNS}`,
          [
            pipelineId,
            nodeId,
            patch.title ?? null,
            patch.type ?? null,
            json(patch.inputsPatch),
            patch.inputsRemove ? [...patch.inputsRemove] : null,
            json(patch.configPatch),
            patch.configRemove ? [...patch.configRemove] : null,
            json(patch.assetPatch),
            json(patch.position),
            patch.disabled ?? null,
            revision,
          ],
        );
        const row = rows[0]!;
        const before = structureOf(current);
        const after = structureOf(row);
        const fields = changedFields(before, after);
        if (fields.length === 0) {
          unchanged = current;
          throw missing; // roll back the revision bump: nothing changed
        }
        const grows = patch.title !== undefined || patch.inputsPatch || patch.configPatch || patch.assetPatch || patch.type;
        if (grows) await checkLimits(tx, pipelineId, limits);
        await recordRevision(tx, pipelineId, revision, options.by ?? SYSTEM_AUTHOR, updateSummary(before, after, fields), {
          nodes: [{ id: nodeId, before, after }],
        });
        return row;
      } catch (err) {
        if (err === missing || err instanceof PipelineLimitError) throw err;
        mapWriteError(err, `Node ${nodeId}`);
      }
    });
  } catch (err) {
    if (err === missing) return unchanged ?? null;
    throw err;
  }
}

/** The node, locked for the write; a node whose revision is not `ifRevision` (when given) is refused. */
async function lockedNode(tx: Queryable, pipelineId: string, nodeId: string, ifRevision: number | undefined): Promise<NodeRow | undefined> {
  const { rows } = await tx.query<NodeRow>(`SELECT ${NODE_COLUMNS} FROM video_production_nodes WHERE pipeline_id = $1 AND id = $2 FOR UPDATE`, [
    pipelineId,
    nodeId,
  ]);
  const current = rows[0];
  if (current && ifRevision !== undefined && Number(current.revision) !== ifRevision) {
    throw new StaleRevisionError(`${current.title} was changed since revision ${ifRevision} (it is at revision ${current.revision})`, current);
  }
  return current;
}

/** "Moved Intro", "Renamed Intro to Opening", "Changed config and inputs of Merge". */
function updateSummary(before: NodeStructure, after: NodeStructure, fields: (keyof NodeStructure)[]): string {
  if (fields.length === 1) {
    switch (fields[0]) {
      case "position":
        return `Moved ${after.title}`;
      case "title":
        return `Renamed ${before.title} to ${after.title}`;
      case "disabled":
        return `${after.disabled ? "Switched off" : "Switched on"} ${after.title}`;
    }
  }
  const names = fields.filter((f) => f !== "position").map((f) => (f === "asset" ? "content" : f));
  return `Changed ${names.join(" and ")} of ${after.title}`;
}

/**
 * Deletes one node as a new revision of the pipeline. Its stored files become garbage once this commits. The
 * revision it made, or false when the pipeline or node did not exist. With `options.ifRevision`, a node whose
 * revision differs is left as it is (StaleRevisionError).
 */
export async function deleteNode(db: Queryable, pipelineId: string, nodeId: string, options: ConditionalWriteOptions = {}): Promise<number | false> {
  const missing = Symbol("missing");
  try {
    return await withTransaction(db, async (tx) => {
      const revision = await nextRevision(tx, pipelineId);
      if (revision === null) throw missing;
      const current = await lockedNode(tx, pipelineId, nodeId, options.ifRevision);
      if (!current) throw missing;
      await tx.query(`DELETE FROM video_production_nodes WHERE pipeline_id = $1 AND id = $2`, [pipelineId, nodeId]);
      await recordGarbagePrefix(tx, nodeFilesPrefix(pipelineId, nodeId), pipelineId);
      await recordRevision(tx, pipelineId, revision, options.by ?? SYSTEM_AUTHOR, `Removed ${current.title}`, {
        nodes: [{ id: nodeId, before: structureOf(current), after: null }],
      });
      return revision;
    });
  } catch (err) {
    if (err === missing) return false;
    throw err;
  }
}

export interface ImportPipelineInput {
  pipeline: CreatePipelineInput;
  nodes: ReadonlyArray<Omit<CreateNodeInput, "pipelineId" | "by">>;
}

/**
 * Creates a pipeline and every one of its nodes in one transaction (pipeline as code), as its first revision:
 * either the whole graph exists afterwards or nothing does. The caller validates the graph first. With `limits`,
 * refuses (PipelineLimitError) a document past them.
 */
export async function importPipeline(
  db: Queryable,
  input: ImportPipelineInput,
  limits?: PipelineLimits,
  options: WriteOptions = {},
): Promise<{ pipeline: SerializedPipeline; nodes: NodeRow[] }> {
  return withTransaction(db, async (tx) => {
    const created = await createPipeline(tx, input.pipeline);
    const revision = (await nextRevision(tx, created.id))!;
    const nodes: NodeRow[] = [];
    for (const node of input.nodes) {
      try {
        nodes.push(await insertNode(tx, created.id, revision, { ...node, inputs: node.inputs ?? {}, config: node.config ?? {} }));
      } catch (err) {
        mapWriteError(err, `Node ${node.id}`);
      }
    }
    await checkLimits(tx, created.id, limits);
    await recordRevision(tx, created.id, revision, options.by ?? SYSTEM_AUTHOR, `Imported ${nodes.length} node${nodes.length === 1 ? "" : "s"}`, {
      nodes: nodes.map((row) => ({ id: row.id, before: null, after: structureOf(row) })),
    });
    return { pipeline: { ...created, revision }, nodes };
  });
}

/** What a restore changed: the revision it made, the nodes written (added or changed) and the ids removed. */
export interface RestoreResult {
  revision: number;
  pipeline: SerializedPipeline;
  written: NodeRow[];
  removed: string[];
}

/**
 * Makes the pipeline's structure what `target` (structureAt) says, as one new revision ("Restored revision N"):
 * nodes missing from it are removed (their files become garbage), nodes it has that the pipeline lacks come back
 * pending, and changed ones get its title, type, inputs, config, asset, position and switch. A node that is queued
 * or running is never removed (ConflictError). Refused (StaleRevisionError) when the pipeline moved past
 * `target.current` since it was read. With `limits`, refuses (PipelineLimitError) a result past them.
 */
export async function restoreStructure(
  db: Queryable,
  pipelineId: string,
  target: StructureAt,
  limits?: PipelineLimits,
  options: WriteOptions = {},
): Promise<RestoreResult | null> {
  return withTransaction(db, async (tx) => {
    const revision = await nextRevision(tx, pipelineId);
    if (revision === null) return null;
    if (revision !== target.current + 1)
      throw new StaleRevisionError(`The pipeline changed while revision ${target.revision} was being restored; try again`, null);
    const { rows: currentRows } = await tx.query<NodeRow>(
      `SELECT ${NODE_COLUMNS} FROM video_production_nodes WHERE pipeline_id = $1 ORDER BY created_at, id FOR UPDATE`,
      [pipelineId],
    );
    const current = new Map(currentRows.map((row) => [row.id, row]));
    const changes: RevisionChanges = { nodes: [] };
    const removed: string[] = [];
    const written: NodeRow[] = [];
    for (const row of currentRows) {
      if (target.nodes.has(row.id)) continue;
      if (row.status === "queued" || row.status === "in_progress") {
        throw new ConflictError(
          `${row.title} is ${row.status === "queued" ? "queued" : "running"}; wait for it to finish or cancel it before restoring revision ${target.revision}`,
        );
      }
      await tx.query(`DELETE FROM video_production_nodes WHERE pipeline_id = $1 AND id = $2`, [pipelineId, row.id]);
      await recordGarbagePrefix(tx, nodeFilesPrefix(pipelineId, row.id), pipelineId);
      changes.nodes.push({ id: row.id, before: structureOf(row), after: null });
      removed.push(row.id);
    }
    for (const [id, structure] of target.nodes) {
      const row = current.get(id);
      if (!row) {
        const added = await insertNode(tx, pipelineId, revision, { id, ...structure });
        changes.nodes.push({ id, before: null, after: structureOf(added) });
        written.push(added);
        continue;
      }
      const before = structureOf(row);
      if (changedFields(before, structure).length === 0) continue;
      const { rows } = await tx.query<NodeRow>(
        `UPDATE video_production_nodes
         SET title = $3, type = $4,
             inputs = (COALESCE(inputs, '{}'::jsonb) - $5::text[]) || $6::jsonb,
             config = (COALESCE(config, '{}'::jsonb) - $7::text[]) || $8::jsonb,
             asset = CASE WHEN $9::jsonb IS NULL THEN NULL ELSE (COALESCE(asset, '{}'::jsonb) - $10::text[]) || $9::jsonb END,
             position = $11::jsonb, disabled = $12, revision = $13
         WHERE pipeline_id = $1 AND id = $2
         RETURNING ${NODE_COLUMNS}`,
        [
          pipelineId,
          id,
          structure.title,
          structure.type,
          keysNotIn(before.inputs, structure.inputs),
          JSON.stringify(structure.inputs),
          keysNotIn(before.config, structure.config),
          JSON.stringify(structure.config),
          structure.asset === null ? null : JSON.stringify(structure.asset),
          keysNotIn(before.asset ?? {}, structure.asset ?? {}),
          structure.position === null ? null : JSON.stringify(structure.position),
          structure.disabled,
          revision,
        ],
      );
      changes.nodes.push({ id, before, after: structureOf(rows[0]!) });
      written.push(rows[0]!);
    }
    const { rows: pipelineRows } = await tx.query<PipelineRow>(`SELECT ${PIPELINE_COLUMNS} FROM video_production_pipelines WHERE id = $1`, [pipelineId]);
    let pipelineRow = pipelineRows[0]!;
    const pipelineBefore = { title: pipelineRow.title, config: pipelineRow.config ?? {}, variables: pipelineRow.variables ?? [] };
    const targetPipeline = { ...target.pipeline, variables: target.pipeline.variables ?? pipelineBefore.variables };
    if (JSON.stringify(pipelineBefore) !== JSON.stringify(targetPipeline)) {
      const { rows } = await tx.query<PipelineRow>(
        `UPDATE video_production_pipelines SET title = $2, config = (COALESCE(config, '{}'::jsonb) - $3::text[]) || $4::jsonb, variables = $5::jsonb WHERE id = $1 RETURNING ${PIPELINE_COLUMNS}`,
        [
          pipelineId,
          targetPipeline.title,
          keysNotIn(pipelineBefore.config, targetPipeline.config),
          JSON.stringify(targetPipeline.config),
          JSON.stringify(targetPipeline.variables),
        ],
      );
      pipelineRow = rows[0]!;
      changes.pipeline = {
        before: pipelineBefore,
        after: { title: pipelineRow.title, config: pipelineRow.config ?? {}, variables: pipelineRow.variables ?? [] },
      };
    }
    await checkLimits(tx, pipelineId, limits);
    await recordRevision(tx, pipelineId, revision, options.by ?? SYSTEM_AUTHOR, `Restored revision ${target.revision}`, changes);
    return { revision, pipeline: toSerializedPipeline(pipelineRow), written, removed };
  });
}

function keysNotIn(from: Record<string, unknown>, to: Record<string, unknown>): string[] {
  return Object.keys(from).filter((key) => !(key in to));
}
