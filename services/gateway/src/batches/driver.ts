import { randomUUID } from "node:crypto";
import type { BatchFinishedWebhook, RowFinishedWebhook } from "@vp/contracts";
import {
  endpointsFor,
  firstFailedNode,
  getNode,
  insertWebhookDeliveries,
  isPostgresUnavailable,
  listActiveBatches,
  listBatchRowsWithRuns,
  updateBatch,
  updateBatchRow,
  withBatchDriverLock,
  type BatchRecord,
  type BatchRowRecord,
  type BatchRowWithRun,
  type BatchStatus,
  type Queryable,
} from "@vp/db";
import { HttpError } from "../errors";
import { requestRun, type RunDeps } from "../start-run";
import { newDeliveryId } from "../webhooks/events";
import { countRows, rowOutput, rowTotals } from "./records";

/**
 * The batch driver: every pass, for each active batch, it reads its rows' runs, records the rows whose run ended
 * (status, cost, output, error; a row.finished webhook), starts waiting rows up to the batch's concurrency, and
 * records the batch's counts and totals and, once every row ended, its end (a batch.finished webhook). One gateway
 * drives at a time (an advisory lock); the rows to start are marked running with their run id in that transaction
 * and their runs requested after it commits, so a crash in between leaves a row whose run is asked for again.
 *
 * Shared work runs once: while a batch's first row has not ended, no other row starts. Its run makes the nodes that
 * depend on no variable and stores them in the cache under keys every row shares; every later row then completes
 * them from the cache. When the first row fails, the others start anyway (each makes what it still needs).
 */

export type BatchDriverDeps = RunDeps & { editor: Queryable };

/** A running row whose run is not recorded this long after it was asked for is asked for again (same run id). */
export const RUN_REQUEST_AGAIN_MS = 120_000;

interface RowStart {
  batchId: string;
  index: number;
  pipelineId: string;
  runId: string;
}

const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : 0);

/** What an ended run leaves on its row: cost, cost saved, the output node's output, the first failure. */
async function rowOutcome(db: Queryable, batch: BatchRecord, row: BatchRowWithRun) {
  const run = row.run!;
  let output: Record<string, unknown> | null = null;
  let error: string | null = null;
  if (row.pipeline_id && run.status === "completed" && batch.output_node_id) {
    const node = await getNode(db, row.pipeline_id, batch.output_node_id);
    if (node?.status === "completed" && node.output) output = { nodeId: batch.output_node_id, ...node.output };
  }
  if (row.pipeline_id && run.status !== "completed") {
    const failed = await firstFailedNode(db, row.pipeline_id);
    error = failed ? `${failed.title || failed.id}: ${failed.error ?? "failed"}` : run.status === "cancelled" ? "cancelled" : "the run failed";
  }
  return {
    status: run.status as "completed" | "failed" | "cancelled",
    cost: num(run.metadata.totalCost),
    costSaved: num(run.metadata.costSaved),
    output,
    error,
  };
}

function rowFinishedPayload(batch: BatchRecord, row: BatchRowRecord): RowFinishedWebhook {
  const output = rowOutput(row);
  return {
    type: "row.finished",
    timestamp: row.updated_at.toISOString(),
    data: {
      pipeline_id: batch.pipeline_id,
      batch_id: batch.id,
      row: {
        index: row.index,
        values: row.values,
        status: row.status,
        pipeline_id: row.pipeline_id,
        run_id: row.run_id,
        cost: row.cost,
        output: output ? { url: output.url, node_id: output.nodeId } : null,
        error: row.error,
      },
    },
  };
}

function batchFinishedPayload(batch: BatchRecord): BatchFinishedWebhook {
  const finishedAt = (batch.finished_at ?? new Date()).toISOString();
  return {
    type: "batch.finished",
    timestamp: finishedAt,
    data: {
      pipeline_id: batch.pipeline_id,
      batch: {
        id: batch.id,
        status: batch.status as "completed" | "failed" | "cancelled",
        counts: batch.counts as Record<string, number>,
        cost: batch.total_cost,
        cost_saved: batch.cost_saved,
        created_at: batch.created_at.toISOString(),
        finished_at: finishedAt,
      },
    },
  };
}

async function deliver(db: Queryable, pipelineId: string, event: "row.finished" | "batch.finished", eventKey: string, payload: unknown) {
  const endpoints = await endpointsFor(db, pipelineId, event);
  await insertWebhookDeliveries(
    db,
    endpoints.map((endpointId) => ({ id: newDeliveryId(), endpointId, pipelineId, eventType: event, eventKey, payload })),
  );
}

/** The status a batch ends with: cancelled when it was cancelled, else failed when a row failed, else as its rows. */
function endStatus(batch: BatchRecord, counts: ReturnType<typeof countRows>): BatchStatus {
  if (batch.status === "cancelled") return "cancelled";
  if (counts.failed > 0) return "failed";
  return counts.cancelled > 0 ? "cancelled" : "completed";
}

/** One batch's step inside the driver's transaction; returns the rows to start once it commits. */
async function stepBatch(deps: BatchDriverDeps, tx: Queryable, batch: BatchRecord, now: number): Promise<RowStart[]> {
  const rows = await listBatchRowsWithRuns(tx, batch.id);
  const starts: RowStart[] = [];
  for (const [i, row] of rows.entries()) {
    if (row.status !== "running" || !row.run_id) continue;
    if (row.run && row.run.status !== "running") {
      const outcome = await rowOutcome(tx, batch, row);
      const written = await updateBatchRow(tx, batch.id, row.index, outcome, { from: ["running"], runId: row.run_id });
      if (!written) continue;
      rows[i] = { ...written, run: row.run };
      deps.logger.info({ batchId: batch.id, row: row.index, runId: row.run_id, status: written.status, cost: written.cost }, "batch row finished");
      await deliver(tx, batch.pipeline_id, "row.finished", `batch:${batch.id}:row:${row.index}:${row.run_id}`, rowFinishedPayload(batch, written));
    } else if (!row.pipeline_id) {
      // Its pipeline (and with it the run) was deleted while it ran.
      const gone = await updateBatchRow(
        tx,
        batch.id,
        row.index,
        { status: "failed", error: "the row's pipeline was deleted" },
        { from: ["running"], runId: row.run_id },
      );
      if (gone) rows[i] = { ...gone, run: null };
    } else if (!row.run && now - row.updated_at.getTime() > RUN_REQUEST_AGAIN_MS) {
      await updateBatchRow(tx, batch.id, row.index, {}, { from: ["running"], runId: row.run_id });
      starts.push({ batchId: batch.id, index: row.index, pipelineId: row.pipeline_id, runId: row.run_id });
    }
  }

  // The batch's own budget (maxCost) is checked against what its rows really cost: once spent, no row starts.
  const spent = batch.max_cost !== null && rowTotals(rows).cost >= batch.max_cost;
  if (batch.status === "running" && spent) {
    const error = `the batch's budget (maxCost ${batch.max_cost}) is spent: its rows cost ${rowTotals(rows).cost}`;
    for (const [i, row] of rows.entries()) {
      if (row.status !== "waiting") continue;
      const stopped = await updateBatchRow(tx, batch.id, row.index, { status: "cancelled", error }, { from: ["waiting"] });
      if (stopped) rows[i] = { ...stopped, run: null };
    }
  }

  if (batch.status === "running" && !spent) {
    // The first row runs alone: the work every row shares is made once, by it, and cached for the others.
    const first = rows[0];
    const firstPending = first !== undefined && (first.status === "waiting" || first.status === "running");
    const running = rows.filter((r) => r.status === "running").length;
    const room = firstPending ? (running === 0 ? 1 : 0) : batch.concurrency - running;
    for (const row of rows.filter((r) => r.status === "waiting").slice(0, Math.max(0, room))) {
      if (!row.pipeline_id) {
        const gone = await updateBatchRow(tx, batch.id, row.index, { status: "failed", error: "the row's pipeline was deleted" }, { from: ["waiting"] });
        if (gone) rows[rows.indexOf(row)] = { ...gone, run: null };
        continue;
      }
      const runId = randomUUID();
      const marked = await updateBatchRow(
        tx,
        batch.id,
        row.index,
        { status: "running", runId, cost: null, costSaved: null, output: null, error: null },
        { from: ["waiting"] },
      );
      if (!marked) continue;
      rows[rows.indexOf(row)] = { ...marked, run: null };
      starts.push({ batchId: batch.id, index: row.index, pipelineId: row.pipeline_id, runId });
    }
  }

  const counts = countRows(rows);
  const totals = rowTotals(rows);
  const ended = counts.waiting === 0 && counts.running === 0;
  const changed =
    JSON.stringify(counts) !== JSON.stringify({ ...countRows([]), ...batch.counts }) ||
    totals.cost !== batch.total_cost ||
    totals.costSaved !== batch.cost_saved;
  if (ended && !batch.finished_at) {
    const finished = await updateBatch(tx, batch.id, {
      counts,
      totalCost: totals.cost,
      costSaved: totals.costSaved,
      status: endStatus(batch, counts),
      finished: true,
    });
    if (finished) {
      deps.logger.info({ batchId: batch.id, status: finished.status, counts, cost: totals.cost, costSaved: totals.costSaved }, "batch finished");
      await deliver(tx, batch.pipeline_id, "batch.finished", `batch:${batch.id}:${finished.finished_at!.getTime()}`, batchFinishedPayload(finished));
    }
  } else if (changed) {
    await updateBatch(tx, batch.id, { counts, totalCost: totals.cost, costSaved: totals.costSaved });
  }
  return starts;
}

/** Asks for a row's run; a refusal (the scheduler's or the gateway's own checks) fails the row with the reason. */
async function startRow(deps: BatchDriverDeps, start: RowStart): Promise<void> {
  const ids = { batchId: start.batchId, row: start.index, pipelineId: start.pipelineId, runId: start.runId };
  let refusal: string | null = null;
  try {
    const result = await requestRun(deps, start.pipelineId, { runId: start.runId });
    if (result.outcome === "refused") refusal = result.reason;
    else deps.logger.info({ ...ids, outcome: result.outcome }, "batch row started");
  } catch (error) {
    if (!(error instanceof HttpError)) {
      // The bus or the database is away: the row keeps its run id and is asked for again later.
      deps.logger.warn({ ...ids, err: error }, "batch row run not requested; asked again later");
      return;
    }
    refusal = error.message;
  }
  if (refusal !== null) {
    deps.logger.info({ ...ids, reason: refusal }, "batch row refused");
    await updateBatchRow(deps.editor, start.batchId, start.index, { status: "failed", error: refusal }, { from: ["running"], runId: start.runId });
  }
}

/** One pass over every active batch; returns how many rows it started (null: another gateway drives). */
export async function driveBatches(deps: BatchDriverDeps): Promise<number | null> {
  const starts = await withBatchDriverLock(deps.editor, async (tx) => {
    const all: RowStart[] = [];
    const now = Date.now();
    for (const batch of await listActiveBatches(tx)) all.push(...(await stepBatch(deps, tx, batch, now)));
    return all;
  });
  if (!starts) return null;
  await Promise.all(starts.map((s) => startRow(deps, s)));
  return starts.length;
}

/**
 * How long the driver waits after a pass that took `passMs` (its rows' run requests included): passes begin every
 * `intervalMs`, and after a longer pass the next waits a tenth of it, so a slow database is not asked back to back.
 */
export const passDelay = (intervalMs: number, passMs: number) => Math.max(intervalMs / 10, intervalMs - passMs);

/** The driver's loop: a pass every `intervalMs` (a failed pass is logged and the next one goes on). */
export function startBatchDriver(deps: BatchDriverDeps, { intervalMs = 1000 }: { intervalMs?: number } = {}) {
  let stopped = false;
  let wake: (() => void) | undefined;
  const loop = (async () => {
    while (!stopped) {
      const began = Date.now();
      try {
        await driveBatches(deps);
      } catch (error) {
        if (isPostgresUnavailable(error)) deps.logger.warn({ err: error }, "batch driver: the database is unavailable; retried on the next pass");
        else deps.logger.error({ err: error }, "batch driver pass failed; retried on the next pass");
      }
      if (stopped) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, passDelay(intervalMs, Date.now() - began));
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  })();
  deps.logger.info({ intervalMs }, "batch driver on");
  return {
    /** Stops after the pass in progress. */
    async stop() {
      stopped = true;
      wake?.();
      await loop;
    },
  };
}
