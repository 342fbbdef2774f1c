import type { CancelCommand } from "@vp/contracts";
import type { ConsumeContext } from "@vp/bus";
import { listNodes } from "@vp/db";
import type { RunResources } from "./resources";

/**
 * A cancel command. One node: pending, queued or in_progress -> cancelled through the state-writer, and its
 * job interrupted; a run holding it then cancels its dependants ("upstream "<title>" (<id>) was cancelled"). A pipeline:
 * its runs stop dispatching, and every queued or running node and every pending run member is cancelled, so
 * no queued node ever starts.
 */
export async function cancelRuns(res: RunResources, cmd: CancelCommand, ctx: ConsumeContext): Promise<void> {
  const { deps, transition } = res;
  const reason = `cancelled by ${cmd.by}`;
  const cancelOne = async (nodeId: string) => {
    const run = res.active.holding(cmd.pipelineId, nodeId);
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
  for (const run of res.active.view().values()) if (run.pipelineId === cmd.pipelineId) run.cancelling = true;
  const rows = await listNodes(deps.db, cmd.pipelineId);
  const targets = rows.filter((r) => {
    if (r.status === "queued" || r.status === "in_progress") return true;
    const run = res.active.holding(cmd.pipelineId, r.id);
    return r.status === "pending" && run !== undefined && run.plan.has(r.id);
  });
  const results = await Promise.all(targets.map(async (r) => ({ id: r.id, reply: await cancelOne(r.id) })));
  const cancelled = results.filter((x) => x.reply.ok).map((x) => x.id);
  ctx.logger.info({ pipelineId: cmd.pipelineId, cancelled: cancelled.length }, "pipeline cancel");
  deps.replyCancel(ctx, { ok: true, cancelled });
}
