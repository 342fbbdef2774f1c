import { randomUUID } from "node:crypto";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { JobMessage, NodeType, Topology } from "@vp/contracts";
import { NonRetryableError, type Bus, type ConsumeContext, type InvalidMessageInfo } from "@vp/bus";
import type { Queryable } from "@vp/db";
import type { Storage } from "@vp/storage";
import { metrics, type Logger } from "@vp/telemetry";
import { hashingStorage } from "./content-hash";
import type { ClaimedAttempt } from "./job-attempt";
import { claimJob, providerJobRecorder } from "./job-claim";
import { failJob, failureOutcome, rejectInvalidJob, settleFailure } from "./job-failure";
import { loadInputs } from "./job-inputs";
import { withVariableDefaults } from "./variables";
import { listenForInterrupts } from "./job-interrupts";
import { progressReporter, startHeartbeat } from "./job-liveness";
import { storeResult } from "./job-result";
import { runWork } from "./job-work";
import { UNAVAILABLE_WAIT_MS, untilReachable } from "./until-stored";
import type { WorkFunction } from "./work";

export { loadInputs } from "./job-inputs";

export interface JobRunnerDeps {
  bus: Bus;
  topology: Topology;
  /** Postgres as vp_reader: executors never write execution state themselves. */
  db: Queryable;
  storage: Storage;
  /** Parent of the per-attempt work directories. */
  workRoot: string;
  works: Partial<Record<NodeType, WorkFunction>>;
  /** Minimum time between forwarded progress ticks. */
  progressIntervalMs?: number;
  claimTimeoutMs?: number;
  /** How long a job waits in this process for an unavailable state-writer or database before it is handed back. */
  unavailableWaitMs?: number;
}

/** What one runner's deliveries share: its dependencies, the jobs it runs (for interrupts), recent outcomes. */
interface Runner {
  deps: JobRunnerDeps;
  progressIntervalMs: number;
  running: Map<string, AbortController>;
  /** Whether each recent message's attempt stored its result, by `<jobId>@<stream sequence>`. */
  outcomes: Map<string, Promise<boolean>>;
}

/**
 * The executor side of a job, identical for every node type:
 * 1. claim queued -> in_progress for this job and delivery attempt (through the state-writer) before any
 *    work or spending; a job that is already done or superseded is acknowledged without work;
 * 2. load the node and its inputs, run the type's work function in a fresh directory;
 * 3. publish the result as a fact for the state-writer; only then is the job message acknowledged.
 * A crash anywhere before 3 leaves the message unacknowledged: JetStream redelivers it and the claim of
 * the next attempt supersedes this one, so a late result of this attempt is rejected.
 * The parts: claim (job-claim), heartbeat and progress (job-liveness), the work (job-work), storing the result
 * (job-result), failure classification and final failures (job-failure), interrupts (job-interrupts).
 */
export function createJobRunner(deps: JobRunnerDeps) {
  const runner: Runner = {
    deps,
    progressIntervalMs: deps.progressIntervalMs ?? 300,
    running: listenForInterrupts(deps.bus, deps.topology.subjects.interrupt),
    outcomes: new Map(),
  };
  return {
    handleJob: (job: JobMessage, ctx: ConsumeContext): Promise<void> => handleJob(runner, job, ctx),
    failJob: (job: JobMessage, reason: string, attempt: number): Promise<void> => failJob(deps, job, reason, attempt),
    rejectInvalidJob: (info: InvalidMessageInfo, logger: Logger): Promise<void> => rejectInvalidJob(deps, info, logger),
  };
}

/**
 * JetStream may deliver a job message again while (or just after) this process runs it: nats-server 2.9 does so
 * after a crash and restart (NATS-outage fault scenario, tests/faults/nats-outage.test.ts). A second
 * delivery's claim would take the node over and run the work again, so a duplicate of the same message (same
 * stream sequence) waits for this process's own attempt and is only acknowledged when that attempt's result is
 * stored. A new message for the job (the reconciler's revive) is never short-cut. Outcomes are remembered for
 * the last 10,000 messages.
 */
async function handleJob(runner: Runner, job: JobMessage, ctx: ConsumeContext): Promise<void> {
  const { outcomes } = runner;
  const remember = (key: string, outcome: Promise<boolean>) => {
    outcomes.set(key, outcome);
    if (outcomes.size > 10_000) outcomes.delete(outcomes.keys().next().value!);
  };
  const work = runner.deps.works[job.type];
  if (!work) throw new NonRetryableError(`no executor for node type ${job.type} in this process`);
  const key = `${job.jobId}@${ctx.seq}`;
  const earlier = outcomes.get(key);
  if (earlier && (await earlier)) {
    ctx.logger.warn({ jobId: job.jobId, delivery: ctx.attempt }, "duplicate delivery of a job this process already finished; acknowledged without work");
    return;
  }
  let stored!: (ok: boolean) => void;
  remember(key, new Promise<boolean>((resolve) => (stored = resolve)));
  try {
    await runJob(runner, job, ctx, work);
    stored(true);
  } catch (error) {
    stored(false);
    outcomes.delete(key);
    throw error;
  }
}

/** One delivery of a job; resolves once its result is stored (or nothing is left to do), throws to retry. */
async function runJob(runner: Runner, job: JobMessage, ctx: ConsumeContext, work: WorkFunction): Promise<void> {
  const claimId = randomUUID();
  // The attempt's directory is made while the claim is decided (a directory spends nothing; the claim still
  // comes before any work), and removed whatever happens. Named by this delivery's claim, so it is this
  // attempt's alone.
  const workDir = join(runner.deps.workRoot, `${job.jobId}-${claimId.slice(0, 8)}`);
  const madeDir = mkdir(workDir, { recursive: true });
  madeDir.catch(() => undefined);
  try {
    await claimAndRun(runner, job, ctx, work, claimId, workDir, madeDir);
  } finally {
    await madeDir.catch(() => undefined);
    await rm(workDir, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** Claims the job, runs its work with heartbeats and progress, and stores the result; metrics cover the work. */
async function claimAndRun(
  runner: Runner,
  job: JobMessage,
  ctx: ConsumeContext,
  work: WorkFunction,
  claimId: string,
  workDir: string,
  madeDir: Promise<unknown>,
): Promise<void> {
  const { deps, running } = runner;
  const delivery = ctx.attempt;
  const claim = await claimJob(deps, job, ctx, claimId);
  if (!claim.ok) {
    // already_done, stale, not_found: nothing to do, and retrying cannot change that. If a newer holder
    // dies later, the scheduler's reconciler revives the node from its stopped heartbeat.
    ctx.logger.warn({ jobId: job.jobId, delivery, code: claim.code, reason: claim.reason }, "job not claimed; skipping");
    return;
  }
  // The database's attempt counter, not JetStream's delivery count, orders attempts.
  const attempt = Number(claim.node.metadata?.attempt ?? delivery);
  const ids = { pipelineId: job.pipelineId, nodeId: job.nodeId, jobId: job.jobId, attempt };
  const logger = ctx.logger.child({ ...ids, delivery });
  const claimed: ClaimedAttempt = { job, ctx, attempt, ids, logger };

  // The work reads the node's text and config with its placeholders filled from the pipeline's variable defaults,
  // as the scheduler keyed it.
  const [node] = (await untilReachable(
    () => withVariableDefaults(deps.db, job.pipelineId, [claim.node]),
    ctx.signal,
    logger,
    "reading the pipeline's variables",
    deps.unavailableWaitMs ?? UNAVAILABLE_WAIT_MS,
    "the database",
  )) as [typeof claim.node];
  const inputs = await untilReachable(
    () => loadInputs(deps.db, node),
    ctx.signal,
    logger,
    "reading the node's inputs",
    deps.unavailableWaitMs ?? UNAVAILABLE_WAIT_MS,
    "the database",
  );
  await madeDir;

  const progress = progressReporter(deps, claimed, runner.progressIntervalMs);
  const recordProviderJob = providerJobRecorder(deps, claimed);
  const heartbeat = startHeartbeat(deps, claimed);

  const cancel = new AbortController();
  running.set(job.jobId, cancel);
  const signal = AbortSignal.any([ctx.signal, cancel.signal]);
  const started = process.hrtime.bigint();
  const endTimer = metrics.jobDuration.startTimer({ type: job.type });
  metrics.jobsInFlight.inc({ type: job.type });
  let outcome = "error";
  try {
    logger.info({ type: job.type }, "work started");
    const hashing = hashingStorage(deps.storage);
    const leaseMs = Math.floor(deps.topology.consumers.job(job.type).ackWaitMs / 3);
    const context = {
      job,
      attempt,
      node,
      inputs,
      storage: hashing.storage,
      workDir,
      signal,
      cancelled: cancel.signal,
      leaseMs,
      progress,
      logger,
      recordProviderJob,
    };
    const result = await runWork(work, context);
    outcome = await storeResult(deps, claimed, result, hashing, started);
  } catch (error) {
    outcome = failureOutcome(error, cancel.signal, ctx.signal);
    settleFailure(error, cancel.signal, logger);
  } finally {
    running.delete(job.jobId);
    metrics.jobsInFlight.dec({ type: job.type });
    endTimer({ outcome });
    clearInterval(heartbeat);
  }
}
