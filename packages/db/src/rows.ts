import type { SerializedNode, SerializedPipeline, Variable } from "@vp/contracts";

/** A row of video_production_pipelines as pg returns it. */
export interface PipelineRow {
  id: string;
  version: string;
  title: string;
  config: Record<string, unknown>;
  metadata: Record<string, unknown>;
  created_at: Date;
  updated_at: Date;
  /** The structure revision (bigint: pg returns it as a string). */
  revision: string | number;
  /** The declared variables (a JSON array; see @vp/contracts Variables). */
  variables: Variable[];
}

/** A row of video_production_nodes as pg returns it: the API shape plus the added columns. */
export interface NodeRow extends Omit<SerializedNode, "revision"> {
  /** Grows by one with every state-writer write of the row. Not part of the API shape. */
  state_version: number;
  created_at: Date;
  /** The pipeline revision of the node's last structure change (bigint: pg returns it as a string). */
  revision: string | number;
}

export const PIPELINE_COLUMNS = "id, version, title, config, metadata, created_at, updated_at, revision, variables";
export const NODE_COLUMNS =
  "id, pipeline_id, title, type, inputs, config, asset, status, metadata, output, state_version, created_at, position, disabled, revision";

function iso(value: Date | string): string {
  return (value instanceof Date ? value : new Date(value)).toISOString();
}

/** A node row as the API serializes it. */
export function toSerializedNode(row: NodeRow): SerializedNode {
  return {
    id: row.id,
    pipeline_id: row.pipeline_id,
    title: row.title,
    type: row.type,
    inputs: row.inputs ?? {},
    config: row.config ?? {},
    asset: row.asset ?? null,
    status: row.status,
    metadata: row.metadata ?? null,
    output: row.output ?? null,
    position: row.position ?? null,
    disabled: row.disabled === true,
    revision: Number(row.revision ?? 0),
  };
}

/** A pipeline row as the API serializes it; `nodes` is included when given (show endpoint). */
export function toSerializedPipeline(row: PipelineRow, nodes?: readonly NodeRow[]): SerializedPipeline {
  const out: SerializedPipeline = {
    id: row.id,
    version: row.version,
    title: row.title,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
    config: row.config ?? {},
    metadata: row.metadata ?? {},
    revision: Number(row.revision ?? 0),
    variables: row.variables ?? [],
  };
  if (nodes) out.nodes = nodes.map(toSerializedNode);
  return out;
}
