/**
 * How big one pipeline may grow, on every write path (add a node, edit one, import a document). Far above what
 * a producer draws (a long video is tens of nodes with a few KB of config each), far below what would let one
 * editor make every reader of the pipeline (the event stream's snapshot, GET, the estimate) expensive.
 * The gateway takes both from its env (MAX_PIPELINE_NODES, MAX_PIPELINE_STRUCTURE_BYTES).
 */
export interface PipelineLimits {
  /** Most nodes in one pipeline. */
  maxNodes: number;
  /**
   * Most bytes of structure in one pipeline: every node's title, inputs, config and asset, as Postgres prints
   * them (jsonb text). Positions and execution state are not structure.
   */
  maxStructureBytes: number;
}

export const DEFAULT_PIPELINE_LIMITS: PipelineLimits = { maxNodes: 500, maxStructureBytes: 2 * 1024 * 1024 };
