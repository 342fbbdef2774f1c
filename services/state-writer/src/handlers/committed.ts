import { NodeChanged, type Topology } from "@vp/contracts";
import { publish, type Bus } from "@vp/bus";
import type { NodeRow, StateResult } from "@vp/db";
import type { Logger } from "@vp/telemetry";

/**
 * Publishes a committed change to VP_EVENTS. The event id is derived from the transition
 * (`<jobId>:completed`, ...) and used as Nats-Msg-Id, so re-applying an already-applied transition after
 * a crash between commit and publish republishes the same fact and JetStream drops the duplicate.
 */
export type PublishCommitted = (node: NodeRow, pipelineMetadata: Record<string, unknown>, eventId: string) => Promise<void>;

/**
 * Fault injection for the fault suite (issue 8, scenario 5; tests/faults/state-writer-crash.test.ts). Inert unless
 * `VP_FAULT_POINT=after-commit-before-publish` is set: then the first committed change whose event id contains
 * `match` (all when empty) kills this process with SIGKILL after its transaction committed and before its
 * event is published, once per process. Never set in production (deploy/k8s does not know the variable).
 */
export interface FaultPoint {
  point: "after-commit-before-publish";
  match: string;
}

export function createCommittedPublisher({ bus, topology, logger, faultPoint }: { bus: Bus; topology: Topology; logger: Logger; faultPoint?: FaultPoint }): PublishCommitted {
  let faultArmed = faultPoint?.point === "after-commit-before-publish";
  return async (node, pipelineMetadata, eventId) => {
    if (faultArmed && eventId.includes(faultPoint!.match)) {
      faultArmed = false;
      logger.warn({ pipelineId: node.pipeline_id, nodeId: node.id, eventId, faultPoint: faultPoint!.point }, "fault point: killing the state-writer after commit, before publish");
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
    await publish(bus, topology.subjects.events(node.pipeline_id), NodeChanged, event, { msgId: eventId });
  };
}

/**
 * Runs `fn` for one key at a time, in call order. Commits and publishes of one pipeline are serialized so
 * SSE clients see a node's changes in commit order (state_version lets clients drop stragglers if several
 * state-writer replicas ever race).
 */
export function createKeyedQueue() {
  const tails = new Map<string, Promise<unknown>>();
  return function run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = tails.get(key) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    tails.set(key, tail);
    void tail.then(() => {
      if (tails.get(key) === tail) tails.delete(key);
    });
    return next;
  };
}

export type KeyedQueue = ReturnType<typeof createKeyedQueue>;

export function isApplied(result: StateResult): result is StateResult & { node: NodeRow } {
  return (result.outcome === "applied" || result.outcome === "already") && result.node !== null;
}
