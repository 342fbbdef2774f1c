/**
 * The pipeline metadata the state-writer's status path (the batching queue) last committed, per pipeline, numbered in
 * commit order within this process.
 *
 * Why: every NodeChanged event carries the pipeline's metadata and the editor shows the metadata of the last event it
 * received, whatever the node's stateVersion (web/lib/graph-state.ts). Status changes are published in commit order per
 * pipeline, so that is the newest. Progress ticks run beside them without the pipeline lock and read the pipeline's
 * metadata in their own statement: a status commit landing between a tick's read and the tick's publish would let the
 * tick's event put older progress counts on screen after the newer ones. A tick takes a `mark()` before its statement
 * and, at publish time, uses `since(mark)` instead of its own read when the status path committed in between (that
 * one is at least as new as anything published for the pipeline so far).
 */
export interface PipelineMetadataLog {
  /** The status path committed `metadata` for the pipeline (call before publishing its events). */
  committed(pipelineId: string, metadata: Record<string, unknown>): void;
  /** A mark to compare against later. */
  mark(pipelineId: string): number;
  /** The metadata the status path committed after `mark`, if it did. */
  since(pipelineId: string, mark: number): Record<string, unknown> | undefined;
}

/** At most `limit` pipelines are remembered (the oldest committed is forgotten first). */
export function createPipelineMetadataLog(limit = 10_000): PipelineMetadataLog {
  let seq = 0;
  const latest = new Map<string, { seq: number; metadata: Record<string, unknown> }>();
  return {
    committed(pipelineId, metadata) {
      latest.delete(pipelineId);
      latest.set(pipelineId, { seq: ++seq, metadata });
      if (latest.size > limit) latest.delete(latest.keys().next().value!);
    },
    mark: (pipelineId) => latest.get(pipelineId)?.seq ?? 0,
    since(pipelineId, mark) {
      const entry = latest.get(pipelineId);
      return entry && entry.seq > mark ? entry.metadata : undefined;
    },
  };
}
