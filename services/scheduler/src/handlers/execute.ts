import type { ExecuteCommand, ExecuteVerdict, JobMessage, TransitionReply } from "@vp/contracts";
import type { ConsumeContext } from "@vp/bus";
import { getNode, getNodes, toSerializedNode, type Queryable } from "@vp/db";
import { cacheKey, type KeyedNode } from "@vp/flow-graph/cache-key";
import { executionVerdict, formatProblems, lookup, type GraphNode } from "@vp/flow-graph";
import { fillFromDefaults } from "@vp/runtime";

export interface ExecuteDeps {
  /** Postgres as vp_reader. */
  db: Queryable;
  /** pending -> queued for the command's jobId, decided by the state-writer; the cache key is recorded so the result fills the cache. */
  claim(cmd: ExecuteCommand, cacheKey?: string): Promise<TransitionReply>;
  /** Publishes the job on its type's subject, deduplicated by jobId. */
  dispatch(job: JobMessage): Promise<void>;
  /** Answers the gateway waiting on the command (no-op when nobody waits). */
  reply(ctx: ConsumeContext, verdict: ExecuteVerdict): void;
}

/**
 * An execute command: check readiness and validate the inputs against the node type's schema (executionVerdict,
 * the gateway's check too) before anything is spent, claim the node through the state-writer, dispatch one job.
 * Redelivery-safe: a command whose jobId already owns the node skips the checks and re-dispatches, which
 * JetStream deduplicates by jobId.
 */
export function createExecuteHandler(deps: ExecuteDeps) {
  return async (cmd: ExecuteCommand, ctx: ConsumeContext): Promise<void> => {
    const refuse = (reason: string) => {
      ctx.logger.info({ pipelineId: cmd.pipelineId, nodeId: cmd.nodeId, reason }, "execute refused");
      deps.reply(ctx, { ok: false, reason });
    };

    const stored = await getNode(deps.db, cmd.pipelineId, cmd.nodeId);
    if (!stored) return refuse("Node not found");
    // Keyed as it will run: its placeholders filled from the pipeline's variable defaults.
    const filled = await fillFromDefaults(deps.db, cmd.pipelineId, [stored]);
    const node = toSerializedNode(filled.rows[0]!);
    const ownedByThisCommand = node.metadata?.jobId === cmd.jobId && node.status !== "pending";

    const upstream = Object.values(node.inputs).flat();
    const inputs = upstream.length ? (await getNodes(deps.db, cmd.pipelineId, [...new Set(upstream)])).map(toSerializedNode) : [];
    const nodes = lookup([node, ...inputs] as GraphNode[]);
    if (!ownedByThisCommand) {
      const verdict = executionVerdict(node as GraphNode, nodes);
      if (!verdict.ok) return refuse(verdict.reason);
      const unfilled = filled.unfilled([stored]);
      if (unfilled.length) return refuse(`Give every variable this node uses a default: ${formatProblems(unfilled, nodes)}`);
    }

    // A single execute always executes (the user asked for it); its key is recorded so runs find the result.
    const claimed = await deps.claim(cmd, cacheKey(node as KeyedNode, nodes as unknown as ReadonlyMap<string, KeyedNode>) ?? undefined);
    if (!claimed.ok) return refuse(claimed.reason);

    await deps.dispatch({
      v: 1,
      jobId: cmd.jobId,
      pipelineId: cmd.pipelineId,
      nodeId: cmd.nodeId,
      type: node.type,
      dispatchedAt: new Date().toISOString(),
    });
    ctx.logger.info({ pipelineId: cmd.pipelineId, nodeId: cmd.nodeId, jobId: cmd.jobId, type: node.type }, "job dispatched");
    deps.reply(ctx, { ok: true, jobId: cmd.jobId });
  };
}
