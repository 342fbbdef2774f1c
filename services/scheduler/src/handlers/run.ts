import type {
  CancelCommand,
  CancelVerdict,
  GraphProblem,
  JobInterrupt,
  JobMessage,
  NodeChanged,
  NodeType,
  RunCommand,
  RunReply,
  RunRequest,
  RunVerdict,
  TransitionReply,
  TransitionRequest,
} from "@vp/contracts";
import type { ConsumeContext } from "@vp/bus";
import { getCacheCosts, getCacheEntries, getNodes, getPipeline, getRun, listNodes, listRunningRuns, type NodeRow, type Queryable, type RunRow } from "@vp/db";
import { checkPipeline, formatProblems, maxCostOf, overBudgetReason, type GraphNode } from "@vp/flow-graph";
import { cacheKey, estimateMembers, runMembers, staleNodes, type KeyedNode } from "@vp/flow-graph/cache-key";
import type { Logger } from "@vp/telemetry";
import { RunPlan, type MemberState, type PlanNode, type PlanStep } from "../run-plan";

export interface RunDeps {
  /** Postgres as vp_reader. */
  db: Queryable;
  /** Run records, written by the state-writer. */
  recordRun(req: RunRequest): Promise<RunReply>;
  /** Guarded node transitions through the state-writer: claim-queued, cancel, reset. */
  transition(req: TransitionRequest): Promise<TransitionReply>;
  /** Publishes a job on its type's subject, deduplicated by jobId. */
  dispatch(job: JobMessage): Promise<void>;
  /** Answers the gateway waiting on the run command (no-op when nobody waits). */
  reply(ctx: ConsumeContext, verdict: RunVerdict): void;
  /** Answers the gateway waiting on a cancel command. */
  replyCancel(ctx: ConsumeContext, verdict: CancelVerdict): void;
  /** Tells every executor replica to abort the work of a cancelled job (core NATS, fire and forget). */
  interrupt(msg: JobInterrupt): void;
  logger: Logger;
}

interface ActiveRun {
  id: string;
  pipelineId: string;
  plan: RunPlan;
  types: Map<string, NodeType>;
  /** Upstream ids of each member (to key it when it becomes ready). */
  upstream: Map<string, string[]>;
  /** Bypass the cache (results still fill it). */
  force: boolean;
  finishing: boolean;
  /** The pipeline was cancelled: nothing more is dispatched. */
  cancelling?: boolean;
}

/**
 * Transitions one pipeline's runs keep in flight at once. A wide run's first wave sent all at once (1,000 claims)
 * queued at the state-writer past the request timeout: the claims that timed out left their members without a job
 * and the run never finished (bench/runs.bench.ts). The state-writer group-commits a pipeline's queued transitions
 * up to STATE_WRITER_BATCH_MAX (default 64) per transaction, so 64 in flight lets one batch take a whole window of
 * claims (with 32 the stack's CPU per node was higher in both of two alternating bench pairs at load 12-19: wide
 * cold 12.6 and 14.6 ms at 32 against 11.9 and 12.8 at 64); other pipelines (applied in parallel by the
 * state-writer) do not wait behind this one.
 */
export const MAX_TRANSITIONS_IN_FLIGHT = 64;

/** `fn` with at most `max` calls pending at once per key; the rest wait in call order. Only for leaf calls (no re-entry). */
function limitedPerKey<A, R>(max: number, keyOf: (arg: A) => string, fn: (arg: A) => Promise<R>): (arg: A) => Promise<R> {
  const slots = new Map<string, { active: number; waiting: Array<() => void> }>();
  return async (arg) => {
    const key = keyOf(arg);
    let slot = slots.get(key);
    if (!slot) slots.set(key, (slot = { active: 0, waiting: [] }));
    const held = slot;
    if (held.active < max) held.active += 1;
    else await new Promise<void>((resolve) => held.waiting.push(resolve)); // a finishing call hands its place over
    try {
      return await fn(arg);
    } finally {
      const next = held.waiting.shift();
      if (next) next();
      else if (--held.active === 0) slots.delete(key);
    }
  };
}

/**
 * Ready members keyed per read: a wave of ready members (a wide run's first step: all of them) is read in chunks
 * of this many, one getNodes and one getCacheEntries each, so its first claims go out after one chunk's reads.
 */
export const LAUNCH_CHUNK = 128;

/** A completed member is current when its recorded key (if any) is the key it has now. */
function upToDate(row: KeyedNode, key: string | null): boolean {
  const recorded = row.metadata?.cacheKey;
  return typeof recorded !== "string" || recorded === key;
}

/** A run's job id for a member: deterministic, so a claim or dispatch repeated after a restart is idempotent. */
export const runJobId = (runId: string, nodeId: string) => `${runId}-${nodeId}`;

/**
 * The DAG engine of pipeline runs. A run command is checked as a whole (checkPipeline: every problem at once),
 * recorded through the state-writer, and its members' readiness kept in a RunPlan (pending-input counters).
 * Committed events of members (the scheduler-events consumer) drive it: a completion decrements its
 * dependants' counters and dispatches those at zero through the same guarded claim as a single execute;
 * a failure or cancellation cancels every dependant through the state-writer ("upstream <id> failed") while
 * independent branches go on. How many run at once is bounded by the executors' consumers (max ack pending).
 *
 * The plans live in memory and are rebuilt from the database on start (`resume`): the runs table keeps each
 * run's members, the nodes keep their statuses (metadata.runId tells which failures belong to the run).
 * One scheduler replica drives runs; a second would ignore events of runs it does not hold.
 */
export function createRunCoordinator(deps: RunDeps) {
  const runs = new Map<string, ActiveRun>();
  const byNode = new Map<string, ActiveRun>();
  const transition = limitedPerKey(MAX_TRANSITIONS_IN_FLIGHT, (req: TransitionRequest) => req.pipelineId, deps.transition);
  const key = (pipelineId: string, nodeId: string) => `${pipelineId}/${nodeId}`;

  function register(run: ActiveRun) {
    runs.set(run.id, run);
    for (const id of run.types.keys()) byNode.set(key(run.pipelineId, id), run);
  }
  function unregister(run: ActiveRun) {
    runs.delete(run.id);
    for (const id of run.types.keys()) if (byNode.get(key(run.pipelineId, id)) === run) byNode.delete(key(run.pipelineId, id));
  }

  /** Builds, registers and starts a run over `rows` (the pipeline's nodes as read), then catches up. */
  async function adopt(record: Pick<RunRow, "id" | "pipeline_id" | "node_ids"> & { force?: boolean }, rows: NodeRow[]): Promise<ActiveRun> {
    const run = build(record, rows);
    await proceed(run, rows);
    return run;
  }

  /** The run's plan over `rows`, registered: from here its members' events advance it. */
  function build(record: Pick<RunRow, "id" | "pipeline_id" | "node_ids"> & { force?: boolean }, rows: NodeRow[]): ActiveRun {
    const members = new Set(record.node_ids);
    const present = rows.filter((r) => members.has(r.id));
    // Completed members whose result no longer matches the graph wait like pending ones; launching re-keys them.
    const stale = staleNodes(rows as KeyedNode[]);
    const planNodes: PlanNode[] = rows.map((r) => ({
      id: r.id,
      inputs: r.inputs,
      status: r.status,
      stateVersion: r.state_version,
      memberState: endedInRun(r, record.id) ?? (stale.has(r.id) && members.has(r.id) ? "waiting" : undefined),
    }));
    const run: ActiveRun = {
      id: record.id,
      pipelineId: record.pipeline_id,
      plan: new RunPlan(
        planNodes,
        present.map((r) => r.id),
      ),
      types: new Map(present.map((r) => [r.id, r.type])),
      upstream: new Map(present.map((r) => [r.id, [...new Set(Object.values(r.inputs ?? {}).flat())]])),
      force: record.force ?? false,
      finishing: false,
    };
    register(run);
    return run;
  }

  /**
   * A registered run's first step: resets, the first wave, then what happened to running members meanwhile.
   * `launched` is called once the first wave's first chunk has been claimed and dispatched (or completed from
   * the cache), before the rest of the wave and before any dependant.
   */
  async function proceed(run: ActiveRun, rows: NodeRow[], launched?: () => void): Promise<void> {
    const present = rows.filter((r) => run.types.has(r.id));
    // Failed or cancelled before this run: back to pending (history kept) so the run can claim them.
    const ended = present.filter((r) => (r.status === "failed" || r.status === "cancelled") && !endedInRun(r, run.id));
    await Promise.all(ended.map((r) => transition({ v: 1, kind: "reset", pipelineId: run.pipelineId, nodeId: r.id, requestId: run.id })));
    await apply(run, run.plan.start(), launched);
    // Members that were queued/in_progress elsewhere may have finished between the read and the registration.
    const running = present.filter((r) => run.plan.state(r.id) === "running" && (r.status === "queued" || r.status === "in_progress")).map((r) => r.id);
    if (running.length) {
      for (const r of await getNodes(deps.db, run.pipelineId, running)) await apply(run, run.plan.observe(r.id, r.status, r.state_version));
    }
    await maybeFinish(run);
  }

  /**
   * A recorded, registered run: take the first step and answer the command as soon as its first nodes are
   * dispatched (the first LAUNCH_CHUNK members of the first wave), not after the whole wave: a wide run's first
   * wave is 1,000 claims, which outlasted the gateway's verdict timeout. "Recorded and its first nodes dispatched"
   * is what the gateway's 200 promises (a client may rely on them running even if the scheduler dies right after).
   * If the step fails the run is unregistered and the error passed on, so the command's redelivery adopts the
   * recorded run again from the database (claims are idempotent per job id); a scheduler restart resumes it so too.
   */
  async function answerThenProceed(run: ActiveRun, rows: NodeRow[], answer: () => void): Promise<void> {
    try {
      await proceed(run, rows, answer);
    } catch (error) {
      if (runs.get(run.id) === run && !run.finishing) unregister(run);
      throw error;
    }
  }

  /** Cancels what the step cancels and launches what it makes ready (`launched`: see launch). */
  async function apply(run: ActiveRun, step: PlanStep, launched?: () => void): Promise<void> {
    await Promise.all([
      ...step.cancel.map(async ({ nodeId, cause }) => {
        const reason = `upstream ${cause} ${run.plan.state(cause) === "cancelled" ? "was cancelled" : "failed"}`;
        const r = await transition({ v: 1, kind: "cancel", pipelineId: run.pipelineId, nodeId, reason, by: run.id, runId: run.id, requestId: run.id });
        if (!r.ok) deps.logger.warn({ runId: run.id, pipelineId: run.pipelineId, nodeId, reason: r.reason }, "dependant not cancelled");
      }),
      launch(run, step.ready, launched),
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
  async function launch(run: ActiveRun, nodeIds: readonly string[], launched?: () => void): Promise<void> {
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
        const { rows, hits } = await readWave(run, chunk);
        const own = chunk.map((nodeId) => launchOne(run, nodeId, rows, hits));
        for (const step of own) started.push(step.then((next) => (next ? apply(run, next) : undefined)));
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

  /** One wave's reads: the members' rows and their inputs' rows, and the cache entries of the members' keys. */
  async function readWave(run: ActiveRun, chunk: readonly string[]): Promise<{ rows: Map<string, KeyedNode>; hits: ReadonlySet<string> }> {
    const wanted = new Set(chunk);
    for (const nodeId of chunk) for (const up of run.upstream.get(nodeId) ?? []) wanted.add(up);
    const rows = new Map((await getNodes(deps.db, run.pipelineId, [...wanted])).map((r) => [r.id, r as KeyedNode]));
    if (run.force) return { rows, hits: new Set() };
    // Keys of the members that may need work (a current completed member needs no lookup; a stale one does).
    const keys = new Set<string>();
    for (const nodeId of chunk) {
      const row = rows.get(nodeId);
      if (!row) continue;
      const key = cacheKey(row, rows);
      if (key && !(row.status === "completed" && upToDate(row, key))) keys.add(key);
    }
    return { rows, hits: new Set((await getCacheEntries(deps.db, [...keys])).keys()) };
  }

  /**
   * One member of a wave, its inputs all complete: key it (type, config, inputs' content) from the wave's rows.
   * Completed and still under the same key: up to date, nothing to do. Completed under another key: back to
   * pending (stale). Then the cache: a stored result for the key completes it at once (unless the run is forced);
   * otherwise it is claimed and dispatched with the key, so its result fills the cache. Returns the plan's next
   * step when the member ended here (completed, or found ended), for the caller to apply.
   */
  async function launchOne(run: ActiveRun, nodeId: string, rows: ReadonlyMap<string, KeyedNode>, hits: ReadonlySet<string>): Promise<PlanStep | undefined> {
    const jobId = runJobId(run.id, nodeId);
    const ids = { runId: run.id, pipelineId: run.pipelineId, nodeId };
    const row = rows.get(nodeId);
    const key = row ? cacheKey(row, rows) : null;
    if (row?.status === "completed") {
      if (upToDate(row, key)) {
        deps.logger.info(ids, "run member up to date");
        return run.plan.observe(nodeId, "completed");
      }
      const reset = await transition({ v: 1, kind: "reset", pipelineId: run.pipelineId, nodeId, requestId: run.id, stale: true });
      if (!reset.ok) {
        deps.logger.warn({ ...ids, reason: reset.reason }, "stale member not reset");
        return reset.node ? run.plan.observe(nodeId, reset.node.status) : undefined;
      }
      deps.logger.info({ ...ids, from: row.metadata?.cacheKey, to: key }, "run member stale: its key changed");
    }
    if (key && !run.force && hits.has(key)) {
      const hit = await transition({ v: 1, kind: "complete-from-cache", pipelineId: run.pipelineId, nodeId, cacheKey: key, jobId, runId: run.id });
      if (hit.ok) {
        deps.logger.info({ ...ids, cacheKey: key, costSaved: hit.node.metadata?.costSaved }, "run member completed from cache");
        return run.plan.observe(nodeId, "completed");
      }
      if (hit.code !== "not_found") {
        deps.logger.info({ ...ids, reason: hit.reason }, "run member not completed from cache");
        return hit.node ? run.plan.observe(nodeId, hit.node.status) : undefined;
      }
    }
    const claimed = await transition({
      v: 1,
      kind: "claim-queued",
      pipelineId: run.pipelineId,
      nodeId,
      jobId,
      runId: run.id,
      ...(key ? { cacheKey: key } : {}),
    });
    if (!claimed.ok) {
      // Someone else holds the node (a single execute) or it ended: follow what it is now.
      deps.logger.info({ ...ids, reason: claimed.reason }, "run member not claimed");
      return claimed.node ? run.plan.observe(nodeId, claimed.node.status) : undefined;
    }
    await deps.dispatch({ v: 1, jobId, pipelineId: run.pipelineId, nodeId, type: run.types.get(nodeId)!, dispatchedAt: new Date().toISOString() });
    deps.logger.info({ ...ids, jobId }, "run member dispatched");
    return undefined;
  }

  async function maybeFinish(run: ActiveRun): Promise<void> {
    if (!run.plan.done || run.finishing) return;
    run.finishing = true;
    const counts = run.plan.counts();
    const status = counts.failed > 0 ? "failed" : counts.cancelled > 0 ? "cancelled" : "completed";
    const summary = { counts, ...summarise(run.id, await getNodes(deps.db, run.pipelineId, [...run.types.keys()])) };
    const reply = await deps.recordRun({ v: 1, kind: "finish", runId: run.id, status, summary });
    if (!reply.ok) deps.logger.warn({ runId: run.id, reason: reply.reason }, "run not finished");
    unregister(run);
    deps.logger.info({ runId: run.id, pipelineId: run.pipelineId, status, counts, executed: summary.executed, cached: summary.cached }, "run finished");
  }

  /** A run command: check the whole graph, record the run, dispatch what is ready. Redelivery-safe. */
  async function start(cmd: RunCommand, ctx: ConsumeContext): Promise<void> {
    const refuse = (reason: string, problems?: GraphProblem[]) => {
      ctx.logger.info({ runId: cmd.runId, pipelineId: cmd.pipelineId, reason }, "run refused");
      deps.reply(ctx, { ok: false, reason, ...(problems ? { problems } : {}) });
    };
    const held = runs.get(cmd.runId);
    if (held) return deps.reply(ctx, { ok: true, runId: held.id, nodeIds: [...held.types.keys()] });
    const recorded = await getRun(deps.db, cmd.runId);
    if (recorded) {
      const answer = () => deps.reply(ctx, { ok: true, runId: recorded.id, nodeIds: recorded.node_ids });
      if (recorded.status !== "running") return answer();
      const rows = await listNodes(deps.db, recorded.pipeline_id);
      return answerThenProceed(build({ ...recorded, force: runForced(recorded) }, rows), rows, answer);
    }

    const rows = await listNodes(deps.db, cmd.pipelineId);
    const stale = staleNodes(rows as KeyedNode[]);
    if (cmd.targetNodeId) {
      const target = rows.find((r) => r.id === cmd.targetNodeId);
      if (!target) return refuse("Node not found");
      if (cmd.retry && target.status !== "failed" && target.status !== "cancelled") {
        return refuse(`Node cannot be retried (status: ${target.status}); only failed or cancelled nodes are`);
      }
      if (target.status === "completed" && !stale.has(target.id)) return refuse(`Nothing to run: node ${target.id} is already completed`);
    }
    const members = runMembers(rows as KeyedNode[], stale, cmd);
    if (!members.length) return refuse("Nothing to run: the pipeline has no nodes");
    const problems = checkPipeline(rows as GraphNode[], members);
    if (problems.length) return refuse(formatProblems(problems), problems);
    const busy = members.map((id) => byNode.get(key(cmd.pipelineId, id))).find(Boolean);
    if (busy) return refuse(`Pipeline already has run ${busy.id} over some of these nodes; cancel it or wait`);

    // Budget: what the members will cost, before anything is dispatched (cache hits and current results are free).
    const pipeline = await getPipeline(deps.db, cmd.pipelineId);
    const estimate = await estimateMembers(rows as KeyedNode[], members, stale, {
      force: cmd.force ?? false,
      maxCost: maxCostOf(pipeline?.config),
      costsOf: (keys) => getCacheCosts(deps.db, keys),
    });
    if (!estimate.withinBudget) {
      ctx.logger.info(
        { runId: cmd.runId, pipelineId: cmd.pipelineId, estimate: estimate.estimatedTotalCost, maxCost: estimate.maxCost },
        "run refused: over budget",
      );
      return deps.reply(ctx, { ok: false, reason: overBudgetReason(estimate), estimate });
    }

    const created = await deps.recordRun({
      v: 1,
      kind: "create",
      runId: cmd.runId,
      pipelineId: cmd.pipelineId,
      runKind: cmd.retry ? "retry" : cmd.targetNodeId ? "upstream" : "all",
      ...(cmd.targetNodeId ? { targetNodeId: cmd.targetNodeId } : {}),
      nodeIds: members,
      estimate,
      ...(cmd.force ? { force: true } : {}),
    });
    if (!created.ok) return refuse(created.reason);
    ctx.logger.info({ runId: cmd.runId, pipelineId: cmd.pipelineId, members: members.length, estimate: estimate.estimatedTotalCost }, "run started");
    const run = build({ id: cmd.runId, pipeline_id: cmd.pipelineId, node_ids: members, force: cmd.force ?? false }, rows);
    await answerThenProceed(run, rows, () => deps.reply(ctx, { ok: true, runId: cmd.runId, nodeIds: members, estimate }));
  }

  /** A committed node change (VP_EVENTS): advance the run holding the node, if any. */
  async function onEvent(event: NodeChanged): Promise<void> {
    const run = byNode.get(key(event.pipelineId, event.nodeId));
    if (!run) return;
    await apply(run, run.plan.observe(event.nodeId, event.status, event.stateVersion));
    await maybeFinish(run);
  }

  /**
   * A cancel command. One node: pending, queued or in_progress -> cancelled through the state-writer, and its
   * job interrupted; a run holding it then cancels its dependants ("upstream <id> was cancelled"). A pipeline:
   * its runs stop dispatching, and every queued or running node and every pending run member is cancelled, so
   * no queued node ever starts.
   */
  async function cancel(cmd: CancelCommand, ctx: ConsumeContext): Promise<void> {
    const reason = `cancelled by ${cmd.by}`;
    const cancelOne = async (nodeId: string) => {
      const run = byNode.get(key(cmd.pipelineId, nodeId));
      const r = await transition({
        v: 1,
        kind: "cancel",
        pipelineId: cmd.pipelineId,
        nodeId,
        reason,
        by: cmd.by,
        running: true,
        requestId: cmd.commandId,
        ...(run ? { runId: run.id } : {}),
      });
      const jobId = r.node?.metadata?.jobId;
      if (r.ok && typeof jobId === "string") deps.interrupt({ v: 1, pipelineId: cmd.pipelineId, nodeId, jobId, reason });
      return r;
    };
    if (cmd.nodeId) {
      const r = await cancelOne(cmd.nodeId);
      ctx.logger.info({ pipelineId: cmd.pipelineId, nodeId: cmd.nodeId, ok: r.ok }, "node cancel");
      return deps.replyCancel(ctx, r.ok ? { ok: true, cancelled: [cmd.nodeId] } : { ok: false, reason: r.reason });
    }
    for (const run of runs.values()) if (run.pipelineId === cmd.pipelineId) run.cancelling = true;
    const rows = await listNodes(deps.db, cmd.pipelineId);
    const targets = rows.filter((r) => {
      if (r.status === "queued" || r.status === "in_progress") return true;
      const run = byNode.get(key(cmd.pipelineId, r.id));
      return r.status === "pending" && run !== undefined && run.plan.has(r.id);
    });
    const results = await Promise.all(targets.map(async (r) => ({ id: r.id, reply: await cancelOne(r.id) })));
    const cancelled = results.filter((x) => x.reply.ok).map((x) => x.id);
    ctx.logger.info({ pipelineId: cmd.pipelineId, cancelled: cancelled.length }, "pipeline cancel");
    deps.replyCancel(ctx, { ok: true, cancelled });
  }

  /** On start: rebuild every running run from the database and carry on where it stopped. */
  async function resume(): Promise<number> {
    const running = await listRunningRuns(deps.db);
    for (const record of running) {
      if (runs.has(record.id)) continue;
      await adopt({ ...record, force: runForced(record) }, await listNodes(deps.db, record.pipeline_id));
      deps.logger.info({ runId: record.id, pipelineId: record.pipeline_id }, "run resumed");
    }
    return running.length;
  }

  return { start, cancel, onEvent, resume, active: (): ReadonlyMap<string, { pipelineId: string; plan: RunPlan }> => runs };
}

/** A member that already failed or was cancelled in this run keeps that state on a rebuild. */
function endedInRun(row: NodeRow, runId: string): MemberState | undefined {
  if ((row.status === "failed" || row.status === "cancelled") && row.metadata?.runId === runId) return row.status;
  return undefined;
}

/** A forced run says so in its estimate (every member "execute"), which is what a rebuild can read back. */
function runForced(record: Pick<RunRow, "metadata">): boolean {
  return record.metadata?.force === true;
}

/** What a finished run did, from its members' rows: made here, taken from the cache, already current; costs. */
export function summarise(runId: string, rows: NodeRow[]) {
  let executed = 0;
  let cached = 0;
  let upToDate = 0;
  let totalCost = 0;
  let costSaved = 0;
  const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : 0);
  for (const r of rows) {
    if (r.status !== "completed") continue;
    const m = r.metadata ?? {};
    if (m.runId === runId && m.cached === true) {
      cached += 1;
      costSaved += num(m.costSaved);
    } else if (m.runId === runId) {
      executed += 1;
      totalCost += num(m.cost);
    } else {
      upToDate += 1;
      costSaved += num(m.cost) + num(m.costSaved);
    }
  }
  const round = (n: number) => Math.round(n * 1e6) / 1e6;
  return { executed, cached, upToDate, totalCost: round(totalCost), costSaved: round(costSaved) };
}
