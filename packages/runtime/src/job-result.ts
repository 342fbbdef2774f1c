import type { JobCompleted } from "@vp/contracts";
import { publish } from "@vp/bus";
import { getNode } from "@vp/db";
import type { hashingStorage } from "./content-hash";
import type { ClaimedAttempt } from "./job-attempt";
import type { JobRunnerDeps } from "./job-runner";
import { untilRead, untilStored } from "./until-stored";
import type { WorkResult } from "./work";

/**
 * After the work: the output's content hash, then either the attempt's files deleted (the node was deleted while
 * it ran) or the result published as a fact for the state-writer, waiting out outages of the database and the
 * bus. Resolves which of the two happened, once it is done.
 */
export async function storeResult(
  deps: JobRunnerDeps,
  a: ClaimedAttempt,
  result: WorkResult,
  hashing: ReturnType<typeof hashingStorage>,
  started: bigint,
): Promise<"deleted" | "completed"> {
  const { bus, topology, db, storage } = deps;
  const { job, ctx, attempt, ids, logger } = a;
  // The bytes' sha256 enters the dependants' cache keys (a result made twice is recognised as the same).
  if (!result.output.contentHash) result.output.contentHash = await hashing.hashOf(result.output.s3Key);
  // A node deleted while it ran: the gateway deletes its files after the delete commits, so files stored before
  // that are gone with them and files stored after it are this attempt's to delete (checked after storing).
  if (!(await untilRead(() => getNode(db, job.pipelineId, job.nodeId), ctx.signal, logger, "checking that the node still exists"))) {
    // What this attempt stored: through its storage, or elsewhere (a Lambda) under this attempt's own directory.
    const ownDirectory = `pipelines/${job.pipelineId}/nodes/${job.nodeId}/${job.jobId}-a${attempt}/`;
    const written = [...new Set([...hashing.written(), ...(result.output.s3Key.startsWith(ownDirectory) ? [result.output.s3Key] : [])])];
    await Promise.all(written.map((key) => storage.delete(key)));
    logger.warn({ deletedKeys: written.length }, "the node was deleted while it ran; its output is deleted, not reported");
    return "deleted";
  }
  const workSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  const completed: JobCompleted = {
    v: 1,
    kind: "completed",
    ...ids,
    output: result.output,
    cost: result.cost,
    workSeconds,
    at: new Date().toISOString(),
  };
  await untilStored(
    () => publish(bus, topology.messages.state(job.pipelineId, job.nodeId), completed, { msgId: `${job.jobId}:completed:${attempt}` }),
    ctx.signal,
    logger,
    "storing the result",
  );
  logger.info({ workSeconds, cost: result.cost, s3Key: result.output.s3Key }, "work completed");
  return "completed";
}
