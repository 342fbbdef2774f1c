import { randomUUID } from "node:crypto";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import {
  type JobCompleted,
  type JobFailed,
  type JobHeartbeat,
  JobInterrupt,
  JobMessage,
  type JobProgress,
  type NodeType,
  type SerializedNode,
  type Topology,
} from "@vp/contracts";
import { NonRetryableError, publish, request, type Bus, type ConsumeContext, type InvalidMessageInfo } from "@vp/bus";
import { getNode, getNodes, toSerializedNode, type Queryable } from "@vp/db";
import type { Storage } from "@vp/storage";
import { hashingStorage } from "./content-hash";
import { retryLaterIfUnavailable, untilRead, untilStored } from "./until-stored";
import { metrics, withSpan, type Logger } from "@vp/telemetry";
import { ProviderJobConflictError, SupersededError, WorkInputError, type ProviderJobRecord, type WorkFunction } from "./work";

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
}

/**
 * The executor side of a job, identical for every node type:
 * 1. claim queued -> in_progress for this job and delivery attempt (through the state-writer) before any
 *    work or spending; a job that is already done or superseded is acknowledged without work;
 * 2. load the node and its inputs, run the type's work function in a fresh directory;
 * 3. publish the result as a fact for the state-writer; only then is the job message acknowledged.
 * A crash anywhere before 3 leaves the message unacknowledged: JetStream redelivers it and the claim of
 * the next attempt supersedes this one, so a late result of this attempt is rejected.
 */
export function createJobRunner(deps: JobRunnerDeps) {
  const { bus, topology, db, storage, workRoot, works } = deps;
  const progressIntervalMs = deps.progressIntervalMs ?? 300;

  // A cancelled node's work is aborted: the scheduler broadcasts JobInterrupt (core NATS) to every replica and the
  // one running the job aborts its signal (ffmpeg and Chromium are killed, provider polls stop). A missed
  // interrupt costs only the work: the result is rejected, since the node is no longer in_progress.
  const running = new Map<string, AbortController>();
  const interrupts = bus.nc.subscribe(topology.subjects.interrupt);
  void (async () => {
    for await (const msg of interrupts) {
      const parsed = JobInterrupt.safeParse(
        (() => {
          try {
            return msg.json();
          } catch {
            return null;
          }
        })(),
      );
      if (parsed.success) running.get(parsed.data.jobId)?.abort(new Error(parsed.data.reason));
    }
  })();

  // JetStream may deliver a job message again while (or just after) this process runs it: nats-server 2.9 does so
  // after a crash and restart (NATS-outage fault scenario, tests/faults/nats-outage.test.ts). A second
  // delivery's claim would take the node over and run the work again, so a duplicate of the same message (same
  // stream sequence) waits for this process's own attempt and is only acknowledged when that attempt's result is
  // stored. A new message for the job (the reconciler's revive) is never short-cut. Outcomes are remembered for
  // the last 10,000 messages.
  const outcomes = new Map<string, Promise<boolean>>();
  const remember = (key: string, outcome: Promise<boolean>) => {
    outcomes.set(key, outcome);
    if (outcomes.size > 10_000) outcomes.delete(outcomes.keys().next().value!);
  };

  async function handleJob(job: JobMessage, ctx: ConsumeContext): Promise<void> {
    const work = works[job.type];
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
      await runJob(job, ctx, work);
      stored(true);
    } catch (error) {
      stored(false);
      outcomes.delete(key);
      throw error;
    }
  }

  /** One delivery of a job; resolves once its result is stored (or nothing is left to do), throws to retry. */
  async function runJob(job: JobMessage, ctx: ConsumeContext, work: WorkFunction): Promise<void> {
    const claimId = randomUUID();
    // The attempt's directory is made while the claim is decided (a directory spends nothing; the claim still
    // comes before any work), and removed whatever happens. Named by this delivery's claim, so it is this
    // attempt's alone.
    const workDir = join(workRoot, `${job.jobId}-${claimId.slice(0, 8)}`);
    const madeDir = mkdir(workDir, { recursive: true });
    madeDir.catch(() => undefined);
    try {
      await claimAndRun(job, ctx, work, claimId, workDir, madeDir);
    } finally {
      await madeDir.catch(() => undefined);
      await rm(workDir, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  async function claimAndRun(
    job: JobMessage,
    ctx: ConsumeContext,
    work: WorkFunction,
    claimId: string,
    workDir: string,
    madeDir: Promise<unknown>,
  ): Promise<void> {
    const delivery = ctx.attempt;
    const claim = await request(
      bus,
      topology.messages.transition,
      { v: 1, kind: "claim-running", pipelineId: job.pipelineId, nodeId: job.nodeId, jobId: job.jobId, attempt: delivery, claimId },
      { timeoutMs: deps.claimTimeoutMs ?? 10_000 },
    ).catch((error: unknown) => {
      throw retryLaterIfUnavailable(error, "the node could not be claimed");
    });
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

    const node = claim.node;
    const inputs = await loadInputs(db, node).catch((error: unknown) => {
      throw retryLaterIfUnavailable(error, "the node's inputs could not be read");
    });
    await madeDir;

    let lastSent = 0;
    let lastPercent = -1;
    const progress = (percent: number) => {
      const now = Date.now();
      const rounded = Math.max(0, Math.min(99, Math.floor(percent)));
      if (rounded <= lastPercent || now - lastSent < progressIntervalMs) return;
      lastSent = now;
      lastPercent = rounded;
      const tick: JobProgress = { v: 1, kind: "progress", ...ids, percent: rounded, at: new Date(now).toISOString() };
      publish(bus, topology.messages.state(job.pipelineId, job.nodeId), tick, {
        msgId: `${job.jobId}:progress:${attempt}:${rounded}`,
      }).catch((error: unknown) => logger.debug({ err: error }, "progress tick not published"));
    };

    const recordProviderJob = async (record: ProviderJobRecord) => {
      const reply = await request(
        bus,
        topology.messages.transition,
        { v: 1, kind: "record-provider-job", pipelineId: job.pipelineId, nodeId: job.nodeId, jobId: job.jobId, attempt, ...record },
        { timeoutMs: deps.claimTimeoutMs ?? 10_000 },
      );
      if (reply.ok) {
        logger.info({ provider: record.provider, phase: record.phase, providerJobId: record.providerJobId }, "provider job recorded");
        return reply.node.metadata ?? {};
      }
      if (reply.code === "conflict") throw new ProviderJobConflictError(reply.reason);
      throw new SupersededError(reply.reason);
    };

    // Liveness for the reconciler, independent of progress (a provider poll can be silent for minutes).
    let beats = 0;
    const heartbeat = setInterval(
      () => {
        const beat: JobHeartbeat = { v: 1, kind: "heartbeat", ...ids, at: new Date().toISOString() };
        publish(bus, topology.messages.state(job.pipelineId, job.nodeId), beat, {
          msgId: `${job.jobId}:heartbeat:${attempt}:${++beats}`,
        }).catch((error: unknown) => logger.debug({ err: error }, "heartbeat not published"));
      },
      Math.max(1000, Math.floor(topology.consumers.job(job.type).ackWaitMs / 3)),
    );

    const cancel = new AbortController();
    running.set(job.jobId, cancel);
    const signal = AbortSignal.any([ctx.signal, cancel.signal]);
    const started = process.hrtime.bigint();
    const endTimer = metrics.jobDuration.startTimer({ type: job.type });
    metrics.jobsInFlight.inc({ type: job.type });
    let outcome = "error";
    try {
      logger.info({ type: job.type }, "work started");
      const spanAttributes = {
        "vp.pipeline.id": job.pipelineId,
        "vp.node.id": job.nodeId,
        "vp.job.id": job.jobId,
        "vp.node.type": job.type,
        "vp.job.attempt": attempt,
      };
      const hashing = hashingStorage(storage);
      const result = await withSpan(`job ${job.type}`, { attributes: spanAttributes }, () =>
        work({
          job,
          attempt,
          node,
          inputs,
          storage: hashing.storage,
          workDir,
          signal,
          cancelled: cancel.signal,
          leaseMs: Math.floor(topology.consumers.job(job.type).ackWaitMs / 3),
          progress,
          logger,
          recordProviderJob,
        }),
      );
      // The bytes' sha256 enters the dependants' cache keys (a result made twice is recognised as the same).
      if (!result.output.contentHash) result.output.contentHash = await hashing.hashOf(result.output.s3Key);
      // A node deleted while it ran: the gateway deletes its files after the delete commits, so files stored before
      // that are gone with them and files stored after it are this attempt's to delete (checked after storing).
      if (!(await untilRead(() => getNode(db, job.pipelineId, job.nodeId), ctx.signal, logger, "the check that the node still exists"))) {
        // What this attempt stored: through its storage, or elsewhere (a Lambda) under this attempt's own directory.
        const ownDirectory = `pipelines/${job.pipelineId}/nodes/${job.nodeId}/${job.jobId}-a${attempt}/`;
        const written = [...new Set([...hashing.written(), ...(result.output.s3Key.startsWith(ownDirectory) ? [result.output.s3Key] : [])])];
        await Promise.all(written.map((key) => storage.delete(key)));
        outcome = "deleted";
        logger.warn({ deletedKeys: written.length }, "the node was deleted while it ran; its output is deleted, not reported");
        return;
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
        "result",
      );
      outcome = "completed";
      logger.info({ workSeconds, cost: result.cost, s3Key: result.output.s3Key }, "work completed");
    } catch (error) {
      outcome = cancel.signal.aborted ? "cancelled" : ctx.signal.aborted ? "interrupted" : error instanceof SupersededError ? "superseded" : "error";
      if (cancel.signal.aborted) {
        // The node is already cancelled by the state-writer: no result to report, nothing to retry.
        logger.info({ reason: String((cancel.signal.reason as Error)?.message ?? "cancelled") }, "work cancelled");
        return;
      }
      if (error instanceof WorkInputError) throw new NonRetryableError(error.message, { cause: error });
      if (error instanceof SupersededError) {
        // Same policy as a stale claim: the newer attempt owns the node and reports its result.
        logger.warn({ reason: error.message }, "attempt superseded; stopping without a result");
        return;
      }
      throw error;
    } finally {
      running.delete(job.jobId);
      metrics.jobsInFlight.dec({ type: job.type });
      endTimer({ outcome });
      clearInterval(heartbeat);
    }
  }

  /** Called by the consume helper when a job will not be retried: the node fails with the reason. */
  async function failJob(job: JobMessage, reason: string, attempt: number): Promise<void> {
    const failed: JobFailed = {
      v: 1,
      kind: "failed",
      pipelineId: job.pipelineId,
      nodeId: job.nodeId,
      jobId: job.jobId,
      attempt,
      error: reason,
      final: true,
      at: new Date().toISOString(),
    };
    await publish(bus, topology.messages.state(job.pipelineId, job.nodeId), failed, {
      msgId: `${job.jobId}:failed`,
    });
  }

  /**
   * Called by the consume helper for a job message that is not JSON or fails the schema (it is terminated, never
   * redelivered). Its node was claimed (queued) for the job by the scheduler and would wait for it forever, so when
   * the payload still names a pipeline, node and job, the node fails with the reason (visible over SSE). The
   * state-writer applies the failure only to a node queued or running for that job; otherwise it logs the
   * rejection. A payload that names nothing is only logged (by the consume helper, with the reason).
   */
  async function rejectInvalidJob(info: InvalidMessageInfo, logger: Logger): Promise<void> {
    const ids = namedJob(info.raw);
    if (!ids) {
      logger.error({ subject: info.subject, seq: info.seq, reason: info.reason }, "invalid job message names no node; rejected");
      return;
    }
    const failed: JobFailed = {
      v: 1,
      kind: "failed",
      ...ids,
      attempt: 1,
      error: `The job message for this node could not be read (${info.reason}); nothing was run. Run the node again`,
      final: true,
      at: new Date().toISOString(),
    };
    await publish(bus, topology.messages.state(ids.pipelineId, ids.nodeId), failed, { msgId: `${ids.jobId}:invalid:${info.seq}` });
    logger.error({ ...ids, subject: info.subject, seq: info.seq, reason: info.reason }, "invalid job message rejected; its node fails");
  }

  return { handleJob, failJob, rejectInvalidJob };
}

/** pipelineId, nodeId and jobId of an unreadable job payload, when it still carries them in a usable form. */
function namedJob(raw: string): { pipelineId: string; nodeId: string; jobId: string } | undefined {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return undefined;
  }
  const ids = JobMessage.pick({ pipelineId: true, nodeId: true, jobId: true }).safeParse(value);
  return ids.success ? ids.data : undefined;
}

export async function loadInputs(db: Queryable, node: SerializedNode): Promise<Record<string, SerializedNode[]>> {
  const ids = Object.values(node.inputs).flat();
  const rows = ids.length ? await getNodes(db, node.pipeline_id, [...new Set(ids)]) : [];
  const byId = new Map(rows.map((row) => [row.id, toSerializedNode(row)]));
  const inputs: Record<string, SerializedNode[]> = {};
  for (const [slot, slotIds] of Object.entries(node.inputs)) {
    inputs[slot] = slotIds.map((id) => {
      const upstream = byId.get(id);
      if (!upstream) throw new WorkInputError(`input "${slot}" refers to node "${id}", which no longer exists`);
      return upstream;
    });
  }
  return inputs;
}
