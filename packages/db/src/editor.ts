import type { NodePosition, NodeType, PipelineLimits, SerializedPipeline } from "@vp/contracts";
import { withTransaction, type Queryable } from "./connection";
import { ConflictError, NotFoundError, PG, PipelineLimitError, ValidationError, pgCode } from "./errors";
import { NODE_COLUMNS, PIPELINE_COLUMNS, toSerializedPipeline, type NodeRow, type PipelineRow } from "./rows";
import { nodeFilesPrefix, pipelineFilesPrefix, recordGarbagePrefix } from "./storage-files";

/**
 * Editor queries (run as vp_editor): structure columns only. Every JSONB write is a partial merge
 * (`COALESCE(col, '{}') || $patch`), never a whole-column write. Every write to a node first bumps
 * the pipeline's updated_at (locking the pipeline row), the same lock order as the state-writer
 * (pipeline row, then node row), so the two never deadlock.
 */

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
 * inside the write's transaction after the write, with the pipeline row locked (touchPipeline, or the import's
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
}

export async function createPipeline(db: Queryable, input: CreatePipelineInput): Promise<SerializedPipeline> {
  try {
    const { rows } = await db.query<PipelineRow>(
      `INSERT INTO video_production_pipelines (id, title, version, config)
       VALUES ($1, $2, COALESCE($3, '1.0'), COALESCE($4::jsonb, '{}'::jsonb))
       RETURNING ${PIPELINE_COLUMNS}`,
      [input.id, input.title, input.version ?? null, json(input.config)],
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

/** Partial update; always bumps updated_at. Null when the pipeline does not exist. */
export async function updatePipeline(db: Queryable, id: string, patch: UpdatePipelineInput): Promise<SerializedPipeline | null> {
  try {
    const { rows } = await db.query<PipelineRow>(
      `UPDATE video_production_pipelines
       SET title = COALESCE($2, title),
           version = COALESCE($3, version),
           config = COALESCE(config, '{}'::jsonb) || COALESCE($4::jsonb, '{}'::jsonb),
           updated_at = now()
       WHERE id = $1
       RETURNING ${PIPELINE_COLUMNS}`,
      [id, patch.title ?? null, patch.version ?? null, json(patch.configPatch)],
    );
    return rows[0] ? toSerializedPipeline(rows[0]) : null;
  } catch (err) {
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

/** Locks the pipeline row (first in the lock order) by bumping updated_at; false when it is missing. */
async function touchPipeline(db: Queryable, pipelineId: string): Promise<boolean> {
  const { rowCount } = await db.query(`UPDATE video_production_pipelines SET updated_at = now() WHERE id = $1`, [pipelineId]);
  return (rowCount ?? 0) > 0;
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
}

/**
 * Inserts a pending node (status, metadata, output take their defaults) and bumps the pipeline's updated_at.
 * With `limits`, refuses (PipelineLimitError) a node that takes the pipeline past them.
 */
export async function createNode(db: Queryable, input: CreateNodeInput, limits?: PipelineLimits): Promise<NodeRow> {
  return withTransaction(db, async (tx) => {
    if (!(await touchPipeline(tx, input.pipelineId))) {
      throw new NotFoundError(`Pipeline ${input.pipelineId} not found`);
    }
    try {
      const { rows } = await tx.query<NodeRow>(
        `INSERT INTO video_production_nodes (id, pipeline_id, title, type, inputs, config, asset, position, disabled)
         VALUES ($1, $2, $3, $4, COALESCE($5::jsonb, '{}'::jsonb), COALESCE($6::jsonb, '{}'::jsonb), $7::jsonb, $8::jsonb, $9)
         RETURNING ${NODE_COLUMNS}`,
        [
          input.id,
          input.pipelineId,
          input.title,
          input.type,
          json(input.inputs),
          json(input.config),
          input.asset == null ? null : JSON.stringify(input.asset),
          input.position == null ? null : JSON.stringify(input.position),
          input.disabled === true,
        ],
      );
      await checkLimits(tx, input.pipelineId, limits);
      return rows[0]!;
    } catch (err) {
      mapWriteError(err, `Node ${input.id}`);
    }
  });
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
 * Partial structure update of one node in one transaction: bump (and lock) the pipeline, then update
 * the node. Null when the pipeline or node does not exist. With `limits`, refuses (PipelineLimitError) an
 * update that takes the pipeline past them (a move alone changes no structure and is not checked).
 */
export async function updateNodeStructure(
  db: Queryable,
  pipelineId: string,
  nodeId: string,
  patch: UpdateNodeStructureInput,
  limits?: PipelineLimits,
): Promise<NodeRow | null> {
  const missing = Symbol("missing");
  try {
    return await withTransaction(db, async (tx) => {
      if (!(await touchPipeline(tx, pipelineId))) throw missing;
      try {
        const { rows } = await tx.query<NodeRow>(
          `UPDATE video_production_nodes
           SET title = COALESCE($3, title),
               type = COALESCE($4, type),
               inputs = (COALESCE(inputs, '{}'::jsonb) - COALESCE($6::text[], '{}'::text[])) || COALESCE($5::jsonb, '{}'::jsonb),
               config = (COALESCE(config, '{}'::jsonb) - COALESCE($8::text[], '{}'::text[])) || COALESCE($7::jsonb, '{}'::jsonb),
               asset = CASE WHEN $9::jsonb IS NULL THEN asset ELSE COALESCE(asset, '{}'::jsonb) || $9::jsonb END,
               position = COALESCE($10::jsonb, position),
               disabled = COALESCE($11::boolean, disabled)
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
          ],
        );
        if (!rows[0]) throw missing; // roll back the pipeline bump
        const grows = patch.title !== undefined || patch.inputsPatch || patch.configPatch || patch.assetPatch || patch.type;
        if (grows) await checkLimits(tx, pipelineId, limits);
        return rows[0];
      } catch (err) {
        if (err === missing || err instanceof PipelineLimitError) throw err;
        mapWriteError(err, `Node ${nodeId}`);
      }
    });
  } catch (err) {
    if (err === missing) return null;
    throw err;
  }
}

/** Deletes one node (bumping the pipeline first, same lock order). False when it did not exist. */
export async function deleteNode(db: Queryable, pipelineId: string, nodeId: string): Promise<boolean> {
  return withTransaction(db, async (tx) => {
    if (!(await touchPipeline(tx, pipelineId))) return false;
    const { rowCount } = await tx.query(`DELETE FROM video_production_nodes WHERE pipeline_id = $1 AND id = $2`, [pipelineId, nodeId]);
    if (!rowCount) return false;
    // The node's stored files (uploads, every attempt's outputs) become garbage once this commits.
    await recordGarbagePrefix(tx, nodeFilesPrefix(pipelineId, nodeId), pipelineId);
    return true;
  });
}

export interface ImportPipelineInput {
  pipeline: CreatePipelineInput;
  nodes: ReadonlyArray<Omit<CreateNodeInput, "pipelineId">>;
}

/**
 * Creates a pipeline and every one of its nodes in one transaction (pipeline as code): either the whole
 * graph exists afterwards or nothing does. The caller validates the graph first. With `limits`, refuses
 * (PipelineLimitError) a document past them.
 */
export async function importPipeline(
  db: Queryable,
  input: ImportPipelineInput,
  limits?: PipelineLimits,
): Promise<{ pipeline: SerializedPipeline; nodes: NodeRow[] }> {
  return withTransaction(db, async (tx) => {
    const pipeline = await createPipeline(tx, input.pipeline);
    const nodes: NodeRow[] = [];
    for (const node of input.nodes) {
      try {
        const { rows } = await tx.query<NodeRow>(
          `INSERT INTO video_production_nodes (id, pipeline_id, title, type, inputs, config, asset, position, disabled)
           VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7::jsonb, $8::jsonb, $9)
           RETURNING ${NODE_COLUMNS}`,
          [
            node.id,
            pipeline.id,
            node.title,
            node.type,
            JSON.stringify(node.inputs ?? {}),
            JSON.stringify(node.config ?? {}),
            node.asset == null ? null : JSON.stringify(node.asset),
            node.position == null ? null : JSON.stringify(node.position),
            node.disabled === true,
          ],
        );
        nodes.push(rows[0]!);
      } catch (err) {
        mapWriteError(err, `Node ${node.id}`);
      }
    }
    await checkLimits(tx, pipeline.id, limits);
    return { pipeline, nodes };
  });
}
