import { randomUUID } from "node:crypto";
import { extname } from "node:path";
import { Readable } from "node:stream";
import archiver from "archiver";
import { CsvError, parse } from "csv-parse/sync";
import { Hono, type Context } from "hono";
import { z } from "zod";
import { ForbiddenError } from "@vp/auth";
import {
  cancelWaitingRows,
  createBatch,
  getBatch,
  getPipelineVariables,
  listBatches,
  listBatchRows,
  listNodes,
  resetRowsForRetry,
  setBatchStatus,
  withBatchDriverLock,
  type NodeRow,
} from "@vp/db";
import { checkPipeline, formatProblems, formatUsdApart, lookup, maxCostOf, type GraphNode } from "@vp/flow-graph";
import { runMembers, type KeyedNode } from "@vp/flow-graph/cache-key";
import { variableProblems } from "@vp/flow-graph/variables";
import {
  checkRows,
  cloneNodes,
  defaultOutputNode,
  estimateBatch,
  MAX_BATCH_ROWS,
  parseVariables,
  rowPipeline,
  type BatchEstimate,
  type RawRow,
} from "../batches/plan";
import { requireBatch, serializeBatch } from "../batches/records";
import { limitsOf, type GatewayDeps } from "../deps";
import { HttpError, zodMessage } from "../errors";
import { requirePipeline } from "../pipeline-access";
import { authorOf } from "../structure";
import { noBody, readJson } from "../validation";
import { requestCancel } from "./runs";

const Cell = z.union([z.string(), z.number().finite(), z.null()]);
const Options = {
  concurrency: z.number().int().min(1).max(16).optional(),
  maxCost: z.number().finite().min(0).optional(),
  outputNodeId: z.string().min(1).max(200).optional(),
  dryRun: z.boolean().optional(),
};
const BatchBody = z.strictObject({
  rows: z.array(z.record(z.string(), Cell)).min(1, "a batch needs at least one row").max(MAX_BATCH_ROWS, `at most ${MAX_BATCH_ROWS} rows`),
  ...Options,
});
/** A CSV body's options come in the query string. */
const CsvQuery = z.strictObject({
  concurrency: z.coerce.number().int().min(1).max(16).optional(),
  maxCost: z.coerce.number().finite().min(0).optional(),
  outputNodeId: z.string().min(1).max(200).optional(),
  dryRun: z.enum(["true", "false"]).optional(),
  delimiter: z.enum([",", ";", "\t", "|"]).optional(),
});

type BatchInput = { rows: RawRow[]; concurrency?: number; maxCost?: number; outputNodeId?: string; dryRun?: boolean };

/** Rows from a CSV body: the header row names the variables; every later row is one batch row. */
function parseCsv(text: string, delimiter: string): RawRow[] {
  let records: RawRow[];
  try {
    records = parse(text, {
      bom: true,
      delimiter,
      skip_empty_lines: true,
      columns: (header: string[]) => {
        const names = header.map((h) => h.trim());
        const twice = names.find((n, i) => names.indexOf(n) !== i);
        if (twice !== undefined) throw new HttpError(422, `CSV: the column "${twice}" appears twice in the header row`);
        return names;
      },
    }) as RawRow[];
  } catch (error) {
    if (error instanceof HttpError) throw error;
    if (error instanceof CsvError) throw new HttpError(422, `CSV: ${error.message}`);
    throw error;
  }
  if (!records.length) throw new HttpError(422, "CSV: a batch needs a header row and at least one row");
  if (records.length > MAX_BATCH_ROWS) throw new HttpError(422, `CSV: at most ${MAX_BATCH_ROWS} rows`);
  return records;
}

/** The batch request from a JSON body, or from a CSV body (Content-Type text/csv) with its options in the query. */
async function readBatchInput(c: Context): Promise<BatchInput> {
  const type = (c.req.header("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
  if (type === "text/csv") {
    const query = CsvQuery.safeParse(c.req.query());
    if (!query.success) throw new HttpError(422, zodMessage(query.error));
    const { delimiter = ",", dryRun, ...options } = query.data;
    const text = await c.req.text();
    if (text.includes("\u0000")) throw new HttpError(422, "CSV: the body contains a NUL character");
    return { rows: parseCsv(text, delimiter), ...options, dryRun: dryRun === "true" };
  }
  if (type !== "application/json" && type !== "") throw new HttpError(415, "Send the rows as JSON ({ rows: [...] }) or as CSV (Content-Type: text/csv)");
  const parsed = BatchBody.safeParse(await readJson(c));
  if (!parsed.success) throw new HttpError(422, zodMessage(parsed.error));
  return parsed.data as BatchInput;
}

/** The tightest budget of the pipeline's config.maxCost and the request's maxCost; null when neither sets one. */
function budgetOf(config: Record<string, unknown>, given: number | undefined): number | null {
  const budgets = [maxCostOf(config), given ?? null].filter((b): b is number => b !== null);
  return budgets.length ? Math.min(...budgets) : null;
}

function overBudget(estimate: BatchEstimate): string {
  const [total, budget, shared, perRow] = formatUsdApart(estimate.total, estimate.maxCost ?? 0, estimate.shared, estimate.perRow);
  return `Estimated cost ${total} for ${estimate.rows} rows exceeds the budget (maxCost) of ${budget}: shared work ${shared} once, each row's own work about ${perRow}`;
}

async function batchAnswer(deps: GatewayDeps, id: string) {
  const batch = (await getBatch(deps.reader, id))!;
  return { batch: serializeBatch(batch, await listBatchRows(deps.reader, id)) };
}

/**
 * POST /pipelines/:pipeline_id/batches and GET /pipelines/:pipeline_id/batches: a batch runs the pipeline as a template
 * over rows of variable values, each row as its own pipeline (see batches/driver.ts for how they are started).
 */
export function pipelineBatchRoutes(deps: GatewayDeps) {
  const app = new Hono();

  app.post("/:pipeline_id/batches", async (c) => {
    const pipeline = await requirePipeline(deps.reader, c);
    if (c.get("principal")?.pipelines) {
      throw new ForbiddenError(
        "This API key is limited to some pipelines, so it cannot start a batch (each row becomes a pipeline outside its limit); use a key without a pipeline limit",
      );
    }
    const input = await readBatchInput(c);
    const [nodes, rawVariables] = await Promise.all([listNodes(deps.reader, pipeline.id), getPipelineVariables(deps.reader, pipeline.id)]);
    const { variables, problem } = parseVariables(rawVariables);
    if (problem) throw new HttpError(422, problem);
    if (!nodes.length) throw new HttpError(422, "The pipeline has no nodes: there is nothing to run for each row");

    // Every row first: one 422 lists every problem of every row, and nothing is created.
    const checked = checkRows(input.rows, variables, nodes);
    if (!checked.ok) {
      const rowsWith = new Set(checked.problems.map((p) => p.row)).size;
      throw new HttpError(422, `${rowsWith} of ${input.rows.length} rows have problems (${checked.problems.length} in all); nothing was created`, {
        problems: checked.problems,
      });
    }
    const rows = checked.rows;

    // The template as the first row's pipeline would run it (a bound asset given a URL has content).
    const sample = cloneNodes(nodes, rows[0]!.media).map((n) => ({ ...n, pipeline_id: pipeline.id, status: "pending" as const }));
    const members = runMembers(sample as unknown as KeyedNode[], new Set(), {});
    const graphProblems = [...variableProblems(sample, variables), ...checkPipeline(sample as unknown as GraphNode[], members)];
    if (graphProblems.length) throw new HttpError(422, formatProblems(graphProblems, lookup(sample as unknown as GraphNode[])), { problems: graphProblems });

    const outputNodeId = input.outputNodeId ?? defaultOutputNode(nodes);
    if (input.outputNodeId !== undefined && !nodes.some((n) => n.id === input.outputNodeId)) {
      throw new HttpError(422, `outputNodeId: the pipeline has no node "${input.outputNodeId}"`);
    }
    const estimate = estimateBatch(nodes, variables, rows, budgetOf(pipeline.config ?? {}, input.maxCost));
    if (!estimate.withinBudget) throw new HttpError(422, overBudget(estimate), { estimate });
    if (input.dryRun) return c.json({ rows: rows.map((r, i) => ({ index: i + 1, values: r.values })), estimate });

    const batchId = randomUUID();
    const template = { title: pipeline.title, config: pipeline.config ?? {} };
    await createBatch(
      deps.editor,
      {
        id: batchId,
        pipelineId: pipeline.id,
        concurrency: input.concurrency ?? 4,
        maxCost: input.maxCost ?? null,
        outputNodeId,
        estimate: estimate as unknown as Record<string, unknown>,
        createdBy: authorOf(c),
        rows: rows.map((row, i) => rowPipeline(template, nodes as NodeRow[], variables, row, i + 1, randomUUID())),
      },
      limitsOf(deps),
    );
    deps.logger.info({ pipelineId: pipeline.id, batchId, rows: rows.length, estimate: estimate.total }, "batch created");
    return c.json(await batchAnswer(deps, batchId), 201);
  });

  app.get("/:pipeline_id/batches", async (c) => {
    const pipeline = await requirePipeline(deps.reader, c);
    const batches = await listBatches(deps.reader, pipeline.id);
    return c.json({ batches: batches.map((b) => serializeBatch(b)) });
  });

  return app;
}

/** A zip entry's extension: the stored file's own, when it is a plain one. */
const extensionOf = (key: string) => {
  const ext = extname(key).slice(1).toLowerCase();
  return /^[a-z0-9]{1,5}$/.test(ext) ? `.${ext}` : "";
};

/** /batches/:id: read, cancel, cancel a row, retry, every row's output as one zip. */
export function batchRoutes(deps: GatewayDeps) {
  const app = new Hono();

  app.get("/:id", async (c) => {
    const batch = await requireBatch(deps.reader, c);
    return c.json(await batchAnswer(deps, batch.id));
  });

  /** Waiting rows are cancelled; running rows' runs are cancelled through the scheduler (the driver records them). */
  app.post("/:id/cancel", async (c) => {
    const batch = await requireBatch(deps.reader, c);
    await noBody(c);
    if (batch.status !== "running") throw new HttpError(422, `The batch is already ${batch.status}`);
    const running = await withBatchDriverLock(
      deps.editor,
      async (tx) => {
        await setBatchStatus(tx, batch.id, "cancelled");
        await cancelWaitingRows(tx, batch.id);
        return (await listBatchRows(tx, batch.id)).filter((r) => r.status === "running" && r.pipeline_id);
      },
      { wait: true },
    );
    await Promise.all(running!.map((r) => requestCancel(deps, r.pipeline_id!)));
    deps.logger.info({ batchId: batch.id, running: running!.length }, "batch cancelled");
    return c.json(await batchAnswer(deps, batch.id));
  });

  app.post("/:id/rows/:index/cancel", async (c) => {
    const batch = await requireBatch(deps.reader, c);
    await noBody(c);
    const index = Number(c.req.param("index"));
    const row = Number.isInteger(index) ? (await listBatchRows(deps.reader, batch.id)).find((r) => r.index === index) : undefined;
    if (!row) throw new HttpError(404, "Row not found");
    if (row.status === "waiting") await withBatchDriverLock(deps.editor, (tx) => cancelWaitingRows(tx, batch.id, index), { wait: true });
    else if (row.status === "running" && row.pipeline_id) {
      const result = await requestCancel(deps, row.pipeline_id);
      if (result.outcome === "refused") throw new HttpError(422, result.reason);
    } else throw new HttpError(422, `Row ${index} is already ${row.status}`);
    return c.json(await batchAnswer(deps, batch.id));
  });

  /** Failed and cancelled rows run again (each row's pipeline runs what it has not completed). */
  app.post("/:id/retry", async (c) => {
    const batch = await requireBatch(deps.reader, c);
    await noBody(c);
    const reset = await withBatchDriverLock(
      deps.editor,
      async (tx) => {
        const again = await resetRowsForRetry(tx, batch.id);
        if (again.length) await setBatchStatus(tx, batch.id, "running", { reopen: true });
        return again;
      },
      { wait: true },
    );
    if (!reset!.length) throw new HttpError(422, "Nothing to retry: no row failed or was cancelled");
    deps.logger.info({ batchId: batch.id, rows: reset }, "batch rows retried");
    return c.json(await batchAnswer(deps, batch.id));
  });

  /** Every completed row's output file, named by row index (row-001.mp4), streamed as a zip (stored, not compressed). */
  app.get("/:id/outputs.zip", async (c) => {
    const batch = await requireBatch(deps.reader, c);
    const rows = (await listBatchRows(deps.reader, batch.id)).filter((r) => r.status === "completed" && typeof r.output?.s3Key === "string");
    if (!rows.length) throw new HttpError(404, "No row of this batch has an output yet");
    const width = Math.max(3, String(rows.at(-1)!.index).length);
    const archive = archiver("zip", { store: true });
    void (async () => {
      for (const row of rows) {
        const key = row.output!.s3Key as string;
        const added = new Promise((resolve, reject) => {
          archive.once("entry", resolve);
          archive.once("error", reject);
        });
        archive.append(deps.storage.createReadStream(key), { name: `row-${String(row.index).padStart(width, "0")}${extensionOf(key)}` });
        await added;
      }
      await archive.finalize();
    })().catch((error: unknown) => {
      deps.logger.warn({ batchId: batch.id, err: error }, "batch zip cut short");
      archive.destroy(error as Error);
    });
    return new Response(Readable.toWeb(archive) as unknown as ReadableStream, {
      headers: { "content-type": "application/zip", "content-disposition": `attachment; filename="batch-${batch.id}.zip"` },
    });
  });

  return app;
}
