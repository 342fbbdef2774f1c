import type { Context } from "hono";
import { BATCH_ROW_STATUSES, getBatch, type BatchCounts, type BatchRecord, type BatchRowRecord, type Queryable } from "@vp/db";
import { HttpError } from "../errors";

const BATCH_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** The batch the route's `:id` names, or 404. */
export async function requireBatch(reader: Queryable, c: Context): Promise<BatchRecord> {
  const id = c.req.param("id");
  const batch = id && BATCH_ID.test(id) ? await getBatch(reader, id) : null;
  if (!batch) throw new HttpError(404, "Batch not found");
  return batch;
}

/** Where a completed row's result is served: its own pipeline's output node's output. */
export function rowOutputUrl(pipelineId: string, nodeId: string): string {
  return `/v1/video_production/pipelines/${encodeURIComponent(pipelineId)}/nodes/${encodeURIComponent(nodeId)}/output`;
}

/** `{ url, nodeId }` of a row that has a result, else null. */
export function rowOutput(row: Pick<BatchRowRecord, "pipeline_id" | "output">): { url: string; nodeId: string } | null {
  const nodeId = row.output?.nodeId;
  return row.pipeline_id && typeof nodeId === "string" ? { url: rowOutputUrl(row.pipeline_id, nodeId), nodeId } : null;
}

export function countRows(rows: readonly Pick<BatchRowRecord, "status">[]): BatchCounts {
  const counts = Object.fromEntries(BATCH_ROW_STATUSES.map((s) => [s, 0])) as BatchCounts;
  for (const r of rows) counts[r.status] += 1;
  return counts;
}

const money = (n: number) => Math.round(n * 1e6) / 1e6;

/** Cost and cost saved over the rows that ran. */
export function rowTotals(rows: readonly Pick<BatchRowRecord, "cost" | "cost_saved">[]): { cost: number; costSaved: number } {
  return {
    cost: money(rows.reduce((sum, r) => sum + (r.cost ?? 0), 0)),
    costSaved: money(rows.reduce((sum, r) => sum + (r.cost_saved ?? 0), 0)),
  };
}

export function serializeRow(r: BatchRowRecord) {
  return {
    index: r.index,
    values: r.values,
    status: r.status,
    pipelineId: r.pipeline_id,
    runId: r.run_id,
    cost: r.cost,
    costSaved: r.cost_saved,
    output: rowOutput(r),
    error: r.error,
    updatedAt: r.updated_at.toISOString(),
  };
}

/** A batch as the API answers it; with its rows, the counts and totals are the rows' own (current to the read). */
export function serializeBatch(b: BatchRecord, rows?: readonly BatchRowRecord[]) {
  const counts = rows ? countRows(rows) : { ...countRows([]), ...b.counts };
  const totals = rows ? rowTotals(rows) : { cost: b.total_cost, costSaved: b.cost_saved };
  return {
    id: b.id,
    pipelineId: b.pipeline_id,
    status: b.status,
    concurrency: b.concurrency,
    maxCost: b.max_cost,
    outputNodeId: b.output_node_id,
    counts,
    cost: totals.cost,
    costSaved: totals.costSaved,
    estimate: b.estimate,
    createdBy: b.created_by,
    createdAt: b.created_at.toISOString(),
    finishedAt: b.finished_at?.toISOString() ?? null,
    ...(rows ? { rows: rows.map(serializeRow) } : {}),
  };
}
