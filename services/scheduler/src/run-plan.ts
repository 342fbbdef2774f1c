import type { NodeStatus } from "@vp/contracts";

/** What the plan needs of a node: its id, inputs, status and state version (stale events are dropped). */
export interface PlanNode {
  id: string;
  inputs: Record<string, string[]>;
  status: NodeStatus;
  stateVersion?: number;
  /**
   * Overrides the state derived from the status: a rebuilt run passes "failed"/"cancelled" for members that
   * ended in this run (their status is final), while a failed node from before the run is "waiting" (reset).
   */
  memberState?: MemberState;
}

export type MemberState = "waiting" | "running" | "completed" | "failed" | "cancelled";

interface Member {
  state: MemberState;
  /** Inputs inside the run that have not completed yet: the node is ready at 0. */
  remaining: number;
  /** Members that take this node as an input (each once). */
  dependants: string[];
  version: number;
}

export interface PlanStep {
  /** Members whose last input just completed: claim and dispatch them now. */
  ready: string[];
  /** Members that will never run because `cause` failed or was cancelled. */
  cancel: { nodeId: string; cause: string }[];
}

/**
 * One run's DAG bookkeeping, pure and in memory: a pending-input counter per member, decremented along the
 * completed node's dependant list, so deciding readiness costs O(out-degree) per completion and never
 * rescans the graph (a 1,000-node run is planned in milliseconds; see run-plan.test.ts). Built from the
 * database's node rows, so a restarted scheduler rebuilds the same counters from the same statuses.
 */
export class RunPlan {
  private readonly members = new Map<string, Member>();
  private terminal = 0;

  /**
   * Members are the nodes the run executes. Inputs outside the run must already be completed (the caller
   * chose members as "everything not completed" upstream of the targets). Members that are queued or
   * in_progress (started elsewhere) are awaited, not dispatched.
   */
  constructor(nodes: Iterable<PlanNode>, memberIds: Iterable<string>) {
    const byId = new Map<string, PlanNode>();
    for (const n of nodes) byId.set(n.id, n);
    for (const id of memberIds) {
      const n = byId.get(id);
      if (!n) throw new Error(`run member ${id} is not a node of the pipeline`);
      this.members.set(id, { state: n.memberState ?? initialState(n.status), remaining: 0, dependants: [], version: n.stateVersion ?? -1 });
    }
    for (const [id, m] of this.members) {
      if (isTerminal(m.state)) this.terminal += 1;
      for (const up of new Set(Object.values(byId.get(id)!.inputs ?? {}).flat())) {
        const upstream = this.members.get(up);
        if (!upstream) continue;
        upstream.dependants.push(id);
        if (upstream.state !== "completed") m.remaining += 1;
      }
    }
  }

  get size(): number {
    return this.members.size;
  }

  has(nodeId: string): boolean {
    return this.members.has(nodeId);
  }

  state(nodeId: string): MemberState | undefined {
    return this.members.get(nodeId)?.state;
  }

  /** Every member has completed, failed or been cancelled. */
  get done(): boolean {
    return this.terminal === this.members.size;
  }

  counts(): Record<MemberState, number> {
    const c: Record<MemberState, number> = { waiting: 0, running: 0, completed: 0, failed: 0, cancelled: 0 };
    for (const m of this.members.values()) c[m.state] += 1;
    return c;
  }

  /**
   * The first step after (re)building: waiting members with nothing left to wait for, and the dependants
   * of members that had already failed or been cancelled (a scheduler restarted between the failure and
   * the cancellations finishes them).
   */
  start(): PlanStep {
    const step: PlanStep = { ready: [], cancel: [] };
    for (const [id, m] of this.members) {
      if (m.state === "waiting" && m.remaining === 0) step.ready.push(id);
      if (m.state === "failed" || m.state === "cancelled") this.cancelDependants(id, step);
    }
    return step;
  }

  /** The node was handed to an executor (claimed queued by this run). */
  dispatched(nodeId: string): void {
    const m = this.members.get(nodeId);
    if (m?.state === "waiting") m.state = "running";
  }

  /**
   * A committed status change of a member. Events older than what the plan was built from (stateVersion)
   * and repeated terminal events change nothing, so the events consumer may redeliver freely.
   */
  observe(nodeId: string, status: NodeStatus, stateVersion?: number): PlanStep {
    const step: PlanStep = { ready: [], cancel: [] };
    const m = this.members.get(nodeId);
    if (!m || isTerminal(m.state)) return step;
    if (stateVersion !== undefined) {
      if (stateVersion <= m.version) return step;
      m.version = stateVersion;
    }
    if (status === "completed") {
      this.finish(m, "completed");
      for (const d of m.dependants) {
        const dep = this.members.get(d)!;
        dep.remaining -= 1;
        if (dep.remaining === 0 && dep.state === "waiting") step.ready.push(d);
      }
    } else if (status === "failed" || status === "cancelled") {
      this.finish(m, status);
      this.cancelDependants(nodeId, step);
    } else if (status === "queued" || status === "in_progress") {
      if (m.state === "waiting") m.state = "running";
    }
    return step;
  }

  private finish(m: Member, state: "completed" | "failed" | "cancelled") {
    m.state = state;
    this.terminal += 1;
  }

  /** Marks every member downstream of `cause` cancelled (each visited once) and lists them for the state-writer. */
  private cancelDependants(cause: string, step: PlanStep) {
    const queue = [cause];
    for (let i = 0; i < queue.length; i++) {
      for (const d of this.members.get(queue[i]!)!.dependants) {
        const dep = this.members.get(d)!;
        if (dep.state !== "waiting") continue;
        this.finish(dep, "cancelled");
        step.cancel.push({ nodeId: d, cause });
        queue.push(d);
      }
    }
  }
}

function initialState(status: NodeStatus): MemberState {
  switch (status) {
    case "completed":
      return "completed";
    case "queued":
    case "in_progress":
      return "running";
    case "pending":
    case "failed":
    case "cancelled":
      // A failed or cancelled member is reset to pending by the run before it is dispatched.
      return "waiting";
  }
}

function isTerminal(s: MemberState): boolean {
  return s === "completed" || s === "failed" || s === "cancelled";
}

export { selectRunMembers as selectMembers } from "@vp/flow-graph";
