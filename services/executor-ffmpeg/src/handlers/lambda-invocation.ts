import { join } from "node:path";
import { RetryAfterError } from "@vp/bus";
import type { LambdaMediaResult } from "@vp/contracts";
import { factsOfProbe, lambdaCost, probe } from "@vp/media";
import { outputKey } from "@vp/storage";
import { WorkInputError } from "./errors";
import { LambdaFunctionError, type LambdaEvents, type LambdaFunction, type LambdaInvoker } from "./lambda";
import type { WorkContext } from "./types";

/** Lambda's longest invocation (900 s) and a margin for the output's upload: after this an earlier invocation is over. */
export const LAMBDA_INVOCATION_MAX_MS = 960_000;
/** How often a later attempt looks for the output of an invocation that may still be running. */
const WAIT_STEP_MS = 15_000;
/** The memory the functions are deployed with (lambdas/README.md), for the cost of an adopted invocation. */
const DEPLOYED_MEMORY_MB = 3008;

interface EarlierInvocation {
  attempt: number;
  at: number;
}

/** The Lambda invocation an earlier attempt of this job started, as recorded in the node's metadata. */
function earlierInvocation(ctx: WorkContext): EarlierInvocation | undefined {
  const recorded = (ctx.node.metadata?.providerJob ?? {}) as { provider?: unknown; attempt?: unknown; at?: unknown; phase?: unknown };
  if (recorded.provider !== "lambda" || typeof recorded.attempt !== "number" || recorded.attempt >= ctx.attempt) return undefined;
  if (recorded.phase !== "creating" && recorded.phase !== "created") return undefined;
  const at = typeof recorded.at === "string" ? Date.parse(recorded.at) : Number.NaN;
  return { attempt: recorded.attempt, at: Number.isNaN(at) ? 0 : at };
}

/**
 * Invokes a function at most once per job where it can: an invocation keeps running (and billing, and uploading)
 * when the executor that sent it stops (a rollout gives a pod 120 s against up to 900 s of invocation). So before
 * invoking, a later attempt of the job looks for the output of the invocation an earlier attempt recorded (its output
 * key is known: one per attempt); it adopts that output when it is there, and waits (RetryAfterError, not a
 * failure) while the earlier invocation may still be running. Only then does it invoke, recording the invocation first.
 */
export async function invokeOnce<F extends LambdaFunction>(
  ctx: WorkContext,
  lambda: LambdaInvoker,
  fn: F,
  event: LambdaEvents[F] & { output_key: string },
): Promise<LambdaMediaResult> {
  const earlier = earlierInvocation(ctx);
  if (earlier) {
    const key = outputKey(ctx.job.pipelineId, ctx.job.nodeId, ctx.job.jobId, "mp4", earlier.attempt);
    const stored = await ctx.storage.stat(key);
    if (stored) return adopt(ctx, key, stored.size, earlier);
    const waited = Date.now() - earlier.at;
    if (waited < LAMBDA_INVOCATION_MAX_MS) {
      throw new RetryAfterError(
        Math.min(WAIT_STEP_MS, LAMBDA_INVOCATION_MAX_MS - waited),
        `the ${fn} invocation of attempt ${earlier.attempt} may still be running (${Math.round(waited / 1000)} s so far): waiting for its output instead of invoking again`,
      );
    }
    ctx.logger.warn({ fn, earlierAttempt: earlier.attempt }, "the earlier Lambda invocation left no output: invoking again");
  }
  const clientRef = `${fn}-a${ctx.attempt}`;
  await ctx.recordProviderJob?.({ provider: "lambda", phase: "creating", clientRef });
  let result: LambdaMediaResult;
  try {
    result = await lambda.invoke(fn, event, { signal: exceptOnCancel(ctx) });
  } catch (error) {
    // Lambda answered (a function error, throttling, a refusal): that invocation is over and stored nothing, so the
    // next attempt need not wait for it. A dropped request (shutdown, network) leaves it "creating": it may run on.
    if (answered(error)) {
      await ctx
        .recordProviderJob?.({ provider: "lambda", phase: "refused", clientRef })
        .catch((e: unknown) => ctx.logger.warn({ err: e }, "could not record the ended invocation"));
    }
    throw error;
  }
  if (ctx.cancelled?.aborted) return discard(ctx, fn, result);
  await ctx.recordProviderJob?.({ provider: "lambda", phase: "created", providerJobId: result.s3_key, clientRef });
  return result;
}

/**
 * The work's signal without the user's cancel. A cancelled node's invocation runs on (and bills, and stores its
 * output) whether or not its request is dropped, so the request is kept until the function answers and its output
 * is then deleted; a shutdown or a timeout still drops it (the next attempt adopts or waits for that invocation).
 */
function exceptOnCancel(ctx: WorkContext): AbortSignal {
  const { cancelled, signal } = ctx;
  if (!cancelled) return signal;
  const kept = new AbortController();
  const follow = () => {
    if (!cancelled.aborted) kept.abort(signal.reason);
  };
  if (signal.aborted) follow();
  else signal.addEventListener("abort", follow, { once: true });
  return kept.signal;
}

/** The node was cancelled while the function ran: what it stored is deleted, and the work ends as cancelled. */
async function discard(ctx: WorkContext, fn: LambdaFunction, result: LambdaMediaResult): Promise<never> {
  await ctx.storage.delete(result.s3_key);
  ctx.logger.info({ fn, s3Key: result.s3_key }, "the node was cancelled while its Lambda invocation ran: its output is deleted");
  throw ctx.cancelled?.reason ?? new Error("cancelled");
}

/** Whether Lambda answered the invocation (so it is over), as opposed to a request that never got its answer. */
function answered(error: unknown): boolean {
  if (error instanceof LambdaFunctionError || error instanceof WorkInputError) return true;
  const status = (error as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
  return typeof status === "number" && status >= 400 && status < 500;
}

/** The output an earlier attempt's invocation stored, probed here; its cost estimated from the invocation's span. */
async function adopt(ctx: WorkContext, key: string, size: number, earlier: EarlierInvocation): Promise<LambdaMediaResult> {
  const local = join(ctx.workDir, "adopted.mp4");
  await ctx.storage.download(key, local);
  const p = await probe(local);
  const span = Math.min(LAMBDA_INVOCATION_MAX_MS, Math.max(0, Date.now() - earlier.at));
  ctx.logger.info({ s3Key: key, earlierAttempt: earlier.attempt }, "adopting the output of an earlier attempt's Lambda invocation");
  return {
    s3_key: key,
    size,
    duration: Math.round(p.durationSeconds * 1000) / 1000,
    cost: lambdaCost({ durationMs: span, memoryMb: DEPLOYED_MEMORY_MB }),
    width: p.video?.width,
    height: p.video?.height,
    video_codec: p.video?.codec,
    audio_codec: p.audio?.codec,
    facts: { ...factsOfProbe(p), size },
  };
}
