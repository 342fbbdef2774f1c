import type { JobHeartbeat, JobProgress } from "@vp/contracts";
import { publish } from "@vp/bus";
import type { ClaimedAttempt } from "./job-attempt";
import type { JobRunnerDeps } from "./job-runner";

/**
 * The work context's progress: whole percents 0-99, forwarded only when higher than the last one sent and at
 * least `intervalMs` after it. Ticks are ephemeral; a tick that is not published is only logged.
 */
export function progressReporter(deps: JobRunnerDeps, a: ClaimedAttempt, intervalMs: number): (percent: number) => void {
  const { bus, topology } = deps;
  const { job, attempt, ids, logger } = a;
  let lastSent = 0;
  let lastPercent = -1;
  return (percent: number) => {
    const now = Date.now();
    const rounded = Math.max(0, Math.min(99, Math.floor(percent)));
    if (rounded <= lastPercent || now - lastSent < intervalMs) return;
    lastSent = now;
    lastPercent = rounded;
    const tick: JobProgress = { v: 1, kind: "progress", ...ids, percent: rounded, at: new Date(now).toISOString() };
    publish(bus, topology.messages.state(job.pipelineId, job.nodeId), tick, {
      msgId: `${job.jobId}:progress:${attempt}:${rounded}`,
    }).catch((error: unknown) => logger.debug({ err: error }, "progress tick not published"));
  };
}

/**
 * Liveness for the reconciler, independent of progress (a provider poll can be silent for minutes): a heartbeat
 * every third of the job's ack wait (at least 1 s). The caller clears the returned interval when the work ends.
 */
export function startHeartbeat(deps: JobRunnerDeps, a: ClaimedAttempt): ReturnType<typeof setInterval> {
  const { bus, topology } = deps;
  const { job, attempt, ids, logger } = a;
  let beats = 0;
  return setInterval(
    () => {
      const beat: JobHeartbeat = { v: 1, kind: "heartbeat", ...ids, at: new Date().toISOString() };
      publish(bus, topology.messages.state(job.pipelineId, job.nodeId), beat, {
        msgId: `${job.jobId}:heartbeat:${attempt}:${++beats}`,
      }).catch((error: unknown) => logger.debug({ err: error }, "heartbeat not published"));
    },
    Math.max(1000, Math.floor(topology.consumers.job(job.type).ackWaitMs / 3)),
  );
}
