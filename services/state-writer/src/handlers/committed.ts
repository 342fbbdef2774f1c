import type { NodeChanged, Topology } from "@vp/contracts";
import { publish, type Bus } from "@vp/bus";
import { runStateBatch, type BatchMember, type BatchSettled, type Queryable, type StateResult, type TickNodeRow } from "@vp/db";
import { activeContext, flushLogs, runInContext, type Context, type Logger } from "@vp/telemetry";
import type { PipelineMetadataLog } from "./pipeline-metadata";

/**
 * Publishes a committed change to VP_EVENTS. The event id is derived from the transition
 * (`<jobId>:completed`, ...) and used as Nats-Msg-Id, so re-applying an already-applied transition after
 * a crash between commit and publish republishes the same fact and JetStream drops the duplicate.
 */
export type PublishCommitted = (node: CommittedNode, pipelineMetadata: Record<string, unknown>, eventId: string) => Promise<void>;

/** What a committed event carries of the node (a full NodeRow is one). */
export type CommittedNode = TickNodeRow;

/**
 * Fault injection for the fault suite (the state-writer crash scenario, tests/faults/state-writer-crash.test.ts). Inert unless
 * `VP_FAULT_POINT=after-commit-before-publish` is set: then the first committed change whose event id contains
 * `match` (all when empty) kills this process with SIGKILL after its transaction committed and before its
 * event is published, once per process. Never set in production (deploy/k8s does not know the variable).
 */
export interface FaultPoint {
  point: "after-commit-before-publish";
  match: string;
}

export function createCommittedPublisher({
  bus,
  topology,
  logger,
  faultPoint,
}: {
  bus: Bus;
  topology: Topology;
  logger: Logger;
  faultPoint?: FaultPoint;
}): PublishCommitted {
  let faultArmed = faultPoint?.point === "after-commit-before-publish";
  return async (node, pipelineMetadata, eventId) => {
    if (faultArmed && eventId.includes(faultPoint!.match)) {
      faultArmed = false;
      logger.warn(
        { pipelineId: node.pipeline_id, nodeId: node.id, eventId, faultPoint: faultPoint!.point },
        "fault point: killing the state-writer after commit, before publish",
      );
      // pino holds lines while stdout's pipe is full: write them out first, or the kill loses them (the fault suite
      // looks for this line and for the "state committed" line logged just before).
      await flushLogs(logger);
      process.kill(process.pid, "SIGKILL");
      await new Promise(() => undefined);
    }
    const event: NodeChanged = {
      v: 1,
      kind: "node",
      eventId,
      pipelineId: node.pipeline_id,
      nodeId: node.id,
      type: node.type,
      status: node.status,
      stateVersion: node.state_version,
      metadata: node.metadata ?? null,
      output: node.output ?? null,
      pipelineMetadata,
      at: new Date().toISOString(),
    };
    await publish(bus, topology.messages.events(node.pipeline_id), event, { msgId: eventId });
  };
}

/**
 * One pipeline's transitions, applied one batch at a time in call order (group commit). While a batch of a pipeline
 * is being committed, further requests for it wait; the next batch takes up to `batchMax` of them into one
 * transaction (`runStateBatch`: a savepoint per request, one pipeline lock, one progress recompute, one COMMIT). Then
 * `after` is started for each committed request in order (publish the committed event, answer the caller; `after`
 * must reach its publish without awaiting anything else), so a batch's events are written to NATS before the next
 * batch commits and SSE clients see a pipeline's changes in commit order (state_version lets clients drop stragglers
 * if several state-writer replicas ever race). The next batch does not wait for the previous one's publish acks:
 * the order is set when the events are written, and a caller is still answered only once its own event was
 * acknowledged (a failed publish is that caller's error; its request comes back and answers "already"). A request
 * whose transition threw is answered with its error alone; if the batch's transaction fails, every request in it
 * gets the error and nothing was committed. `batchMax` 1 is one transaction per request.
 *
 * `pipelineMetadata` (optional) is told the pipeline metadata each batch committed, before its events are published:
 * progress ticks, which run beside this queue, use it to never publish older pipeline metadata than a status change.
 */
export function createBatchingQueue({ db, batchMax, pipelineMetadata }: { db: Queryable; batchMax: number; pipelineMetadata?: PipelineMetadataLog }) {
  if (!Number.isInteger(batchMax) || batchMax < 1) throw new RangeError(`batchMax must be a positive integer, got ${batchMax}`);
  interface Pending {
    apply: BatchMember;
    after: (result: StateResult) => Promise<unknown>;
    resolve: (value: unknown) => void;
    reject: (error: unknown) => void;
    /** The caller's trace context: its member and its publish run in it, whoever's task drains the batch. */
    ctx: Context;
  }
  type Answer = { ok: true; value: unknown } | { ok: false; error: unknown };
  const waiting = new Map<string, Pending[]>();

  async function drain(key: string): Promise<void> {
    for (;;) {
      const list = waiting.get(key)!;
      if (list.length === 0) {
        waiting.delete(key);
        return;
      }
      const batch = list.splice(0, batchMax);
      let settled: BatchSettled[];
      try {
        settled = await runStateBatch(
          db,
          key,
          batch.map((p) => (tx: Queryable) => runInContext(p.ctx, () => p.apply(tx))),
        );
      } catch (error) {
        for (const p of batch) p.reject(error);
        continue;
      }
      if (pipelineMetadata) {
        const last = settled.findLast((s) => s.ok && s.result.outcome === "applied" && s.result.node?.pipeline_id === key);
        if (last?.ok) pipelineMetadata.committed(key, last.result.pipelineMetadata);
      }
      // Every `after` is started in order before any is awaited: each runs synchronously up to its publish's
      // write to the NATS connection, so the batch's events go out (and are stored) in commit order while their
      // acks are awaited together, and beside the next batch. A caller is answered only once its own publish was
      // acknowledged.
      const done = batch.map((p, i): Promise<Answer> => {
        const s = settled[i]!;
        if (!s.ok) return Promise.resolve({ ok: false, error: s.error });
        try {
          return runInContext(p.ctx, () => p.after(s.result)).then(
            (value) => ({ ok: true, value }),
            (error: unknown) => ({ ok: false, error }),
          );
        } catch (error) {
          return Promise.resolve({ ok: false, error });
        }
      });
      void answer(batch, done);
    }
  }

  async function answer(batch: Pending[], done: Promise<Answer>[]): Promise<void> {
    for (const [i, p] of batch.entries()) {
      const a = await done[i]!;
      if (a.ok) p.resolve(a.value);
      else p.reject(a.error);
    }
  }

  return function run<T>(key: string, apply: BatchMember, after: (result: StateResult) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const pending: Pending = { apply, after, resolve: resolve as (value: unknown) => void, reject, ctx: activeContext() };
      const list = waiting.get(key);
      if (list) {
        list.push(pending);
        return;
      }
      waiting.set(key, [pending]);
      // Started after the current task, so requests that arrive together form the first batch too.
      queueMicrotask(() => void drain(key));
    });
  };
}

export type KeyedQueue = ReturnType<typeof createBatchingQueue>;

export function isApplied<R extends { outcome: string; node: unknown }>(result: R): result is R & { node: NonNullable<R["node"]> } {
  return (result.outcome === "applied" || result.outcome === "already") && result.node !== null;
}
