import { applyProgressTicks, type ProgressTick, type TickDb, type TickResult } from "@vp/db";
import { activeContext, runInContext, type Context } from "@vp/telemetry";
import { isApplied, type PublishCommitted } from "./committed";
import type { PipelineMetadataLog } from "./pipeline-metadata";

/**
 * The answer to one progress tick: a TickResult, or "superseded": a later tick of the same node and attempt was
 * waiting too and was written in its place (its answer came first; `node` is the node it left, when it applied).
 * A superseded tick is done: it is never an error, so its message is acknowledged, not redelivered.
 */
export interface TickAnswer extends Omit<TickResult, "outcome"> {
  outcome: TickResult["outcome"] | "superseded";
  /** superseded: the percent written instead. */
  supersededBy?: number;
}

export interface TickQueueOptions {
  /** A tick pool (createTickPool): its sessions commit with synchronous_commit off. */
  db: TickDb;
  publishCommitted: PublishCommitted;
  /**
   * Most nodes' ticks written by one statement. 1: every tick is its own statement (its own transaction), none
   * coalesced. Above 1: a node's waiting ticks of one attempt are coalesced (the latest wins) and the ticks waiting
   * for several nodes are written by one multi-row UPDATE.
   */
  batchMax: number;
  /** Statements in flight at once (default: 8 when batchMax is 1, else 2): while they run, the next ticks gather. */
  concurrency?: number;
  /** The status path's committed pipeline metadata (see pipeline-metadata.ts). */
  pipelineMetadata?: PipelineMetadataLog;
}

/**
 * Progress ticks of the state-writer: ordered per node, concurrent across nodes (of one pipeline or many).
 *
 * Ordering: a tick changes neither a node's status nor the pipeline's progress, so it does not go through the
 * pipeline's queue of status changes (createBatchingQueue). A node's ticks are written in arrival order, one statement
 * at a time, and each event carries the node's state_version, so consumers that keep the highest version per node
 * (the editor, the scheduler's run plan) converge whatever the interleaving with other nodes' events. Against a status
 * change of the same node the row lock decides: a tick is only written while the node is in_progress for its
 * attempt, so once a completion commits, later ticks are rejected; a tick written before it commits and published
 * after it carries the lower version and is dropped by consumers.
 *
 * Publishing: after a statement, the committed events are published in order (each publish written to NATS before
 * anything is awaited), the nodes are released for their next ticks and the next statement may start; each caller is
 * answered once its own event was acknowledged. A failed publish is its caller's error (its fact is redelivered, is
 * then "already" written, and the same event id is published again); a failed statement is the error of the ticks it
 * wrote, never of the superseded ones.
 */
export function createTickQueue(options: TickQueueOptions) {
  const { db, publishCommitted, batchMax, pipelineMetadata } = options;
  if (!Number.isInteger(batchMax) || batchMax < 1) throw new RangeError(`batchMax must be a positive integer, got ${batchMax}`);
  const concurrency = options.concurrency ?? (batchMax === 1 ? 8 : 2);
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`);

  const waiting: WaitingTicks = { slots: new Map(), ready: new Set() };
  let inFlight = 0;
  let scheduled = false;

  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    // After the current task: ticks that arrive together go into one statement.
    queueMicrotask(() => {
      scheduled = false;
      pump();
    });
  };

  function pump(): void {
    while (inFlight < concurrency && waiting.ready.size > 0) {
      const picks = takeBatch(waiting, batchMax);
      inFlight++;
      void flush(picks);
    }
  }

  async function flush(picks: Pick[]): Promise<void> {
    const marks = picks.map((p) => pipelineMetadata?.mark(p.winner.tick.pipelineId) ?? 0);
    const { results, failure } = await writeTicks(db, picks);
    const published = publishApplied(picks, results, marks, publishCommitted, pipelineMetadata);
    for (const p of picks) release(waiting, p.key);
    inFlight--;
    pump();
    await answerPicks(picks, results, failure, published);
  }

  // biome-ignore lint/suspicious/noRedeclare: the named function expression is for stack traces; the parameter is the tick
  return function tick(tick: ProgressTick, eventId: string): Promise<TickAnswer> {
    return new Promise<TickAnswer>((resolve, reject) => {
      if (enqueue(waiting, { tick, eventId, resolve, reject, ctx: activeContext() })) schedule();
    });
  };
}

interface Pending {
  tick: ProgressTick;
  eventId: string;
  resolve: (answer: TickAnswer) => void;
  reject: (error: unknown) => void;
  /** The caller's trace context: its event is published in it (the statement is shared by the batch). */
  ctx: Context;
}

interface Slot {
  /** A statement writing this node's tick is running. */
  busy: boolean;
  waiting: Pending[];
}

interface Pick {
  key: string;
  winner: Pending;
  superseded: Pending[];
}

/** The ticks waiting per node, and the nodes with waiting ticks and no statement running for them, in the order they became ready. */
interface WaitingTicks {
  slots: Map<string, Slot>;
  ready: Set<string>;
}

type Published = { ok: true } | { ok: false; error: unknown };

/** Queues a tick behind its node's earlier ones; true when its node became ready for a statement. */
function enqueue(waiting: WaitingTicks, pending: Pending): boolean {
  const key = `${pending.tick.pipelineId}\u0000${pending.tick.nodeId}`;
  let slot = waiting.slots.get(key);
  if (!slot) waiting.slots.set(key, (slot = { busy: false, waiting: [] }));
  slot.waiting.push(pending);
  if (slot.busy) return false;
  waiting.ready.add(key);
  return true;
}

/** Up to batchMax ready nodes, each with the tick to write now; they are busy until released. */
function takeBatch(waiting: WaitingTicks, batchMax: number): Pick[] {
  const picks: Pick[] = [];
  for (const key of waiting.ready) {
    if (picks.length === batchMax) break;
    waiting.ready.delete(key);
    picks.push(take(waiting, key, batchMax));
  }
  return picks;
}

/** The node's next tick to write, with the ticks it supersedes. */
function take(waiting: WaitingTicks, key: string, batchMax: number): Pick {
  const slot = waiting.slots.get(key)!;
  slot.busy = true;
  const first = slot.waiting[0]!;
  if (batchMax === 1) {
    slot.waiting.shift();
    return { key, winner: first, superseded: [] };
  }
  // Ticks of another attempt or job wait for their own turn: the guard decides which of them holds the node.
  const sameHolder = (p: Pending) => p.tick.jobId === first.tick.jobId && p.tick.attempt === first.tick.attempt;
  const mine = slot.waiting.filter(sameHolder);
  slot.waiting = slot.waiting.filter((p) => !sameHolder(p));
  return { key, winner: mine.at(-1)!, superseded: mine.slice(0, -1) };
}

function release(waiting: WaitingTicks, key: string): void {
  const slot = waiting.slots.get(key)!;
  slot.busy = false;
  if (slot.waiting.length > 0) waiting.ready.add(key);
  else waiting.slots.delete(key);
}

/** One statement writing every pick's winning tick; its failure is the error of those ticks. */
async function writeTicks(db: TickDb, picks: Pick[]): Promise<{ results?: TickResult[]; failure?: unknown }> {
  try {
    return {
      results: await applyProgressTicks(
        db,
        picks.map((p) => p.winner.tick),
      ),
    };
  } catch (error) {
    return { failure: error };
  }
}

/**
 * Publishes the committed event of each applied tick, in order, each up to its write to NATS before anything is
 * awaited. A status change that committed newer pipeline metadata since `marks` was taken supplies it.
 */
function publishApplied(
  picks: Pick[],
  results: TickResult[] | undefined,
  marks: number[],
  publishCommitted: PublishCommitted,
  pipelineMetadata: PipelineMetadataLog | undefined,
): Array<Promise<Published> | undefined> {
  return picks.map((p, i): Promise<Published> | undefined => {
    const result = results?.[i];
    if (!result || !isApplied(result)) return undefined;
    const newer = pipelineMetadata?.since(p.winner.tick.pipelineId, marks[i]!);
    if (newer) result.pipelineMetadata = newer;
    try {
      return runInContext(p.winner.ctx, () => publishCommitted(result.node, result.pipelineMetadata, p.winner.eventId)).then(
        () => ({ ok: true }),
        (error: unknown) => ({ ok: false, error }),
      );
    } catch (error) {
      return Promise.resolve({ ok: false, error });
    }
  });
}

/** Answers each winner once its own event was acknowledged (or with its error), and the ticks it superseded. */
async function answerPicks(
  picks: Pick[],
  results: TickResult[] | undefined,
  failure: unknown,
  published: Array<Promise<Published> | undefined>,
): Promise<void> {
  await Promise.all(
    picks.map(async (p, i) => {
      const result = results?.[i];
      const outcome = await published[i];
      const superseded: TickAnswer = {
        outcome: "superseded",
        supersededBy: p.winner.tick.percent,
        node: result?.node ?? null,
        pipelineMetadata: result?.pipelineMetadata ?? {},
      };
      if (!result) p.winner.reject(failure);
      else if (outcome && !outcome.ok) p.winner.reject(outcome.error);
      else p.winner.resolve(result);
      for (const s of p.superseded) s.resolve(superseded);
    }),
  );
}

export type TickQueue = ReturnType<typeof createTickQueue>;
