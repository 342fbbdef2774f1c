import { JobInterrupt } from "@vp/contracts";
import type { Bus } from "@vp/bus";

/**
 * A cancelled node's work is aborted: the scheduler broadcasts JobInterrupt (core NATS) to every replica and the
 * one running the job aborts its signal (ffmpeg and Chromium are killed, provider polls stop). A missed
 * interrupt costs only the work: the result is rejected, since the node is no longer in_progress.
 * Returns the controllers of the jobs this process runs, by job id: the runner adds and removes its own.
 */
export function listenForInterrupts(bus: Bus, subject: string): Map<string, AbortController> {
  const running = new Map<string, AbortController>();
  const interrupts = bus.nc.subscribe(subject);
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
  return running;
}
