import type { PlanStep } from "../run-plan";
import type { ActiveRun } from "./active-runs";
import { launchOne, readWave } from "./member";
import type { RunResources } from "./resources";

/**
 * Ready members keyed per read: a wave of ready members (a wide run's first step: all of them) is read in chunks
 * of this many, one getNodes and one getCacheEntries each, so its first claims go out after one chunk's reads.
 */
export const LAUNCH_CHUNK = 128;

/** Cancels what the step cancels and launches what it makes ready (`launched`: see launch). */
export async function apply(res: RunResources, run: ActiveRun, step: PlanStep, launched?: () => void): Promise<void> {
  await Promise.all([
    ...step.cancel.map(async ({ nodeId, cause }) => {
      // The cause by title with its id after it ("Long merge" (m)); the id alone when they are the same.
      const title = run.titles.get(cause);
      const name = title && title !== cause ? `"${title}" (${cause})` : cause;
      const reason = `upstream ${name} ${run.plan.state(cause) === "cancelled" ? "was cancelled" : "failed"}`;
      const r = await res.transition({ v: 1, kind: "cancel", pipelineId: run.pipelineId, nodeId, reason, by: run.id, runId: run.id, requestId: run.id });
      if (!r.ok) res.deps.logger.warn({ runId: run.id, pipelineId: run.pipelineId, nodeId, reason: r.reason }, "dependant not cancelled");
    }),
    launch(res, run, step.ready, launched),
  ]);
}

/**
 * Members whose inputs are all complete, launched as a wave: per chunk of LAUNCH_CHUNK members, one read of
 * their rows and their inputs' rows (getNodes) and one cache lookup of all their keys (getCacheEntries), then
 * each member's transition (complete from the cache, or claim and dispatch) without waiting for the next
 * chunk's reads: the reads of chunk i+1 overlap the claims of chunk i (those are bounded per pipeline by
 * MAX_TRANSITIONS_IN_FLIGHT). A pipeline cancel stops the chunks not yet started. `launched` is called once the
 * first chunk's own transitions (and dispatches) have settled, before what they make ready is launched; at the
 * end if there was nothing to launch. Resolves when the wave and everything it led to have settled.
 */
async function launch(res: RunResources, run: ActiveRun, nodeIds: readonly string[], launched?: () => void): Promise<void> {
  let told = false;
  const tell = () => {
    if (told) return;
    told = true;
    launched?.();
  };
  const started: Promise<void>[] = [];
  try {
    for (let i = 0; i < nodeIds.length; i += LAUNCH_CHUNK) {
      if (run.cancelling) break; // the pipeline's cancel cancels the pending members not launched yet
      const chunk = nodeIds.slice(i, i + LAUNCH_CHUNK);
      for (const nodeId of chunk) run.plan.dispatched(nodeId);
      const { rows, hits } = await readWave(res, run, chunk);
      const own = chunk.map((nodeId) => launchOne(res, run, nodeId, rows, hits));
      for (const step of own) started.push(step.then((next) => (next ? apply(res, run, next) : undefined)));
      if (i === 0) started.push(Promise.allSettled(own).then(tell));
    }
    if (!started.length) tell(); // nothing launched (none ready, or the pipeline is being cancelled)
  } finally {
    // Every launched member is settled before a failure is passed on (no launch outlives its caller).
    const settled = await Promise.allSettled(started);
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
    // biome-ignore lint/correctness/noUnsafeFinally: on purpose: the first launch failure is passed on once all launches settled
    if (failed) throw failed.reason;
  }
}
