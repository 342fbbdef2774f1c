import { getNodes, type NodeRow } from "@vp/db";
import type { NodeChanged } from "@vp/contracts";
import type { ActiveRun } from "./active-runs";
import { endedInRun } from "./build";
import { maybeFinish } from "./finish";
import { apply } from "./launch";
import type { RunResources } from "./resources";

/**
 * A registered run's first step: resets, the first wave, then what happened to running members meanwhile.
 * `launched` is called once the first wave's first chunk has been claimed and dispatched (or completed from
 * the cache), before the rest of the wave and before any dependant.
 */
export async function proceed(res: RunResources, run: ActiveRun, rows: NodeRow[], launched?: () => void): Promise<void> {
  const present = rows.filter((r) => run.types.has(r.id));
  // Failed or cancelled before this run: back to pending (history kept) so the run can claim them.
  const ended = present.filter((r) => (r.status === "failed" || r.status === "cancelled") && !endedInRun(r, run.id));
  await Promise.all(ended.map((r) => res.transition({ v: 1, kind: "reset", pipelineId: run.pipelineId, nodeId: r.id, requestId: run.id })));
  await apply(res, run, run.plan.start(), launched);
  // Members that were queued/in_progress elsewhere may have finished between the read and the registration.
  const running = present.filter((r) => run.plan.state(r.id) === "running" && (r.status === "queued" || r.status === "in_progress")).map((r) => r.id);
  if (running.length) {
    for (const r of await getNodes(res.deps.db, run.pipelineId, running)) await apply(res, run, run.plan.observe(r.id, r.status, r.state_version));
  }
  await maybeFinish(res, run);
}

/**
 * A recorded, registered run: take the first step and answer the command as soon as its first nodes are
 * dispatched (the first LAUNCH_CHUNK members of the first wave), not after the whole wave: a wide run's first
 * wave is 1,000 claims, which outlasted the gateway's verdict timeout. "Recorded and its first nodes dispatched"
 * is what the gateway's 200 promises (a client may rely on them running even if the scheduler dies right after).
 * If the step fails the run is unregistered and the error passed on, so the command's redelivery adopts the
 * recorded run again from the database (claims are idempotent per job id); a scheduler restart resumes it so too.
 */
export async function answerThenProceed(res: RunResources, run: ActiveRun, rows: NodeRow[], answer: () => void): Promise<void> {
  try {
    await proceed(res, run, rows, answer);
  } catch (error) {
    if (res.active.get(run.id) === run && !run.finishing) res.active.unregister(run);
    throw error;
  }
}

/** A committed node change (VP_EVENTS): advance the run holding the node, if any. */
export async function advance(res: RunResources, event: NodeChanged): Promise<void> {
  const run = res.active.holding(event.pipelineId, event.nodeId);
  if (!run) return;
  await apply(res, run, run.plan.observe(event.nodeId, event.status, event.stateVersion));
  await maybeFinish(res, run);
}
