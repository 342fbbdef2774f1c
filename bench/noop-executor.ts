/**
 * A benchmark-only executor for bench/runs.bench.ts: the product's executor runtime (runExecutor: the same
 * consumers, claim transaction, heartbeats, result fact and ack as executor-ffmpeg) with a work function that
 * only stores a few bytes. It stands where BullMQ's no-op worker stands in the baseline, so a run of it
 * measures orchestration alone. Never part of a deployment; started by the bench as its own process with the
 * stack's environment, after the real executor of the same types has been stopped (they would share the
 * durable consumers).
 *
 * Each output holds the job id, so every result has its own content hash: dependants get distinct cache keys
 * and a cold run never hits the cache by accident.
 */
import type { NodeType } from "@vp/contracts";
import { executorEnvSchema, runExecutor, type WorkFunction } from "@vp/runtime";
import { outputKey } from "@vp/storage";

const TYPES = ["asset", "mix-audio"] as const satisfies readonly NodeType[];

const env = executorEnvSchema({ workRoot: ".data/work-bench", healthPort: 0 }).parse(process.env);

const noop: WorkFunction = async (ctx) => {
  const mediaType = ctx.job.type === "asset" ? ((ctx.node.asset as { type?: "video" | "audio" } | null)?.type ?? "video") : "video";
  const key = outputKey(ctx.job.pipelineId, ctx.job.nodeId, ctx.job.jobId, mediaType === "audio" ? "m4a" : "mp4");
  const { size } = await ctx.storage.put(key, Buffer.from(ctx.job.jobId, "utf8"), { contentType: mediaType === "audio" ? "audio/mp4" : "video/mp4" });
  return { output: { type: mediaType, s3Key: key, size, duration: 1 }, cost: 0 };
};

await runExecutor({
  service: "executor-bench",
  // Stands in for executor-ffmpeg (asset and mix-audio are its types): its NATS permissions fit.
  busService: "executor-ffmpeg",
  types: TYPES,
  env,
  works: () => Object.fromEntries(TYPES.map((t) => [t, noop])),
});
