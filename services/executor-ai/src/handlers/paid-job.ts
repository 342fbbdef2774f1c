import { sleep } from "../sleep";
import type { WorkContext } from "@vp/runtime";
import { createdNothing, PROVIDER_LABEL, ProviderJobFailedError, WorkInputError, type PaidProvider } from "../errors";
import type { JobPoll } from "../providers/types";
import { requireRecorder } from "./common";

export interface PaidJobSpec {
  provider: Exclude<PaidProvider, "elevenlabs">;
  /** US dollars from the price table, recorded before anything is paid. */
  estimatedCost: number;
  create(clientRef: string, signal: AbortSignal): Promise<{ id: string }>;
  poll(id: string, signal: AbortSignal): Promise<JobPoll>;
  /** Finds a job created with `clientRef` whose create reply was lost (HeyGen: title search). */
  findByClientRef?(clientRef: string, signal: AbortSignal): Promise<string | undefined>;
  /** Stops a running job so it is no longer charged (Runway). */
  cancel?(id: string): Promise<void>;
}

export interface PaidJobOptions {
  pollIntervalMs: number;
  maxWaitMs: number;
  /** Progress reported while the provider works, as a fraction of the node's bar. */
  onProgress(fraction: number): void;
}

interface StoredProviderJob {
  provider?: string;
  phase?: string;
  clientRef?: string;
  attempt?: number;
}

/** Our reference for the provider job of a node's job: the same for every attempt of it. */
export const clientRefOf = (jobId: string) => `vp-${jobId}`;

/**
 * Creates a paid provider job at most once per node job, then polls it until it is done.
 *
 * 1. A providerJobId recorded by an earlier attempt (in node.metadata) is resumed: no create call.
 * 2. Before the create request, phase "creating" (with the estimate) is committed through the state-writer;
 *    after it, the provider's id ("created") is committed before the first poll. A create the provider
 *    certainly refused (4xx, 429, 5xx, connection refused) is recorded "refused" and may be tried again.
 * 3. An earlier attempt that stopped between "creating" and "created" (crash, timeout, reset: the provider may
 *    or may not have created the job) is the one window a recorded id cannot cover. If the provider can find
 *    a job by our reference (HeyGen: the title), it is found and resumed; if nothing was created, creating is
 *    safe. Providers without such a lookup (Veo, Runway) fail the node with the reason instead of risking a
 *    second payment: the producer checks the provider's dashboard and runs the node again.
 */
export async function runPaidJob(ctx: WorkContext, spec: PaidJobSpec, options: PaidJobOptions): Promise<{ id: string; url: string; durationSeconds?: number }> {
  const record = requireRecorder(ctx);
  const label = PROVIDER_LABEL[spec.provider];
  const meta = (ctx.node.metadata ?? {}) as Record<string, unknown>;
  const clientRef = clientRefOf(ctx.job.jobId);
  const signal = ctx.signal;

  let id = typeof meta.providerJobId === "string" ? meta.providerJobId : undefined;
  if (id && meta.provider !== spec.provider) {
    throw new WorkInputError(
      `this run already paid for ${String(meta.provider)} job ${id}, but the node now names ${spec.provider}; run the node again to use ${label}`,
    );
  }
  if (id) ctx.logger.info({ provider: spec.provider, providerJobId: id }, "resuming the provider job of an earlier attempt");

  const earlier = (meta.providerJob ?? {}) as StoredProviderJob;
  if (!id && earlier.phase === "creating" && earlier.provider === spec.provider) {
    const ref = earlier.clientRef ?? clientRef;
    if (!spec.findByClientRef) {
      throw new WorkInputError(
        `attempt ${earlier.attempt ?? "?"} sent a ${label} create request whose answer was lost; not creating another, which could be paid twice. ` +
          `Check ${label} for reference ${ref} and run the node again`,
      );
    }
    id = await spec.findByClientRef(ref, signal);
    if (id) {
      ctx.logger.warn({ provider: spec.provider, providerJobId: id, clientRef: ref }, "found the job of a create whose answer was lost; resuming it");
      await record({ provider: spec.provider, phase: "created", providerJobId: id, clientRef: ref });
    } else {
      ctx.logger.warn({ provider: spec.provider, clientRef: ref }, `${label} has no job for the lost create; creating it now`);
    }
  }

  if (!id) {
    await confirmCreating(ctx, record, { provider: spec.provider, phase: "creating", clientRef, estimatedCost: spec.estimatedCost });
    try {
      id = (await spec.create(clientRef, signal)).id;
    } catch (error) {
      if (createdNothing(error)) {
        await record({ provider: spec.provider, phase: "refused", clientRef }).catch((e: unknown) =>
          ctx.logger.warn({ err: e }, "could not record the refused create; the next attempt treats it as possibly created"),
        );
      }
      throw error;
    }
    await record({ provider: spec.provider, phase: "created", providerJobId: id, clientRef, estimatedCost: spec.estimatedCost });
  }

  try {
    return await pollUntilDone(ctx, spec, options, id, label);
  } catch (error) {
    // The user cancelled the node: stop the provider's work too where its API allows (a shutdown or a lost
    // lease does not: the next attempt resumes the recorded job).
    if (ctx.cancelled?.aborted && spec.cancel) {
      await spec.cancel(id).then(
        () => ctx.logger.info({ provider: spec.provider, providerJobId: id }, "provider job cancelled at the provider"),
        (e: unknown) => ctx.logger.warn({ provider: spec.provider, providerJobId: id, err: e }, "provider job could not be cancelled at the provider"),
      );
    }
    throw error;
  }
}

/**
 * Records phase "creating" and makes sure the answer is fresh before the paid create is sent: an answer that took
 * longer than the lease (the process was frozen or starved while it was in flight) may be stale — another delivery
 * can have taken the node over meanwhile and created the job itself — so it is asked again ("already" for the
 * holder, SupersededError for a superseded attempt) until an answer arrives within the lease. The remaining
 * window is the few instructions between the last check and the request leaving the process.
 */
async function confirmCreating(ctx: WorkContext, record: ReturnType<typeof requireRecorder>, entry: Parameters<ReturnType<typeof requireRecorder>>[0]) {
  const lease = ctx.leaseMs ?? Number.POSITIVE_INFINITY;
  for (let tries = 1; ; tries++) {
    const asked = performance.now();
    await record(entry);
    const took = performance.now() - asked;
    if (took < lease) return;
    ctx.logger.warn(
      { provider: entry.provider, tookMs: Math.round(took), leaseMs: lease, tries },
      "the creating record's answer came late; confirming the node is still ours before paying",
    );
    if (tries >= 5) throw new Error(`could not confirm within ${lease} ms that this attempt still holds the node; not creating a paid job`);
  }
}

async function pollUntilDone(ctx: WorkContext, spec: PaidJobSpec, options: PaidJobOptions, id: string, label: string) {
  const signal = ctx.signal;
  const started = Date.now();
  options.onProgress(0);
  for (;;) {
    const poll = await spec.poll(id, signal);
    if (poll.state === "succeeded") return { id, url: poll.url, durationSeconds: poll.durationSeconds };
    if (poll.state === "failed") throw new ProviderJobFailedError(spec.provider, id, poll.reason);
    const elapsed = Date.now() - started;
    if (elapsed > options.maxWaitMs) {
      let cancelled = "it cannot be cancelled through the API";
      if (spec.cancel) {
        cancelled = await spec.cancel(id).then(
          () => "it was cancelled",
          (e: unknown) => `cancelling it failed: ${(e as Error).message}`,
        );
      }
      throw new WorkInputError(`${label} job ${id} was still running after ${Math.round(options.maxWaitMs / 60_000)} min; ${cancelled}`);
    }
    options.onProgress(poll.progress ?? Math.min(0.95, elapsed / Math.max(options.maxWaitMs / 10, 1)));
    await sleep(options.pollIntervalMs, signal);
    if (signal.aborted) throw new Error(`stopped while polling ${label} job ${id}; the next attempt resumes it`);
  }
}
