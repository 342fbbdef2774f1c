/**
 * What a node's compute costs, in US dollars, rounded to a millionth of a dollar.
 *
 * Local ffmpeg: CPU-seconds (user + system, as measured by runFfmpeg) times a configured rate. The rate
 * defaults to 0: the executor's machine is paid for whether or not it encodes, and a made-up price would
 * only make totals wrong. Operators who want to charge it back set FFMPEG_COST_PER_CPU_SECOND_USD.
 *
 * Lambda: AWS bills GB-seconds (configured memory x billed duration, in 1 ms steps) plus a price per
 * request, so a node run there reports exactly that.
 */

export const DEFAULT_CPU_SECOND_RATE_USD = 0;

/** AWS Lambda on x86_64, first pricing tier (us-east-1 and most regions). */
export const LAMBDA_GB_SECOND_USD = 0.0000166667;
export const LAMBDA_REQUEST_USD = 0.0000002;

const round6 = (usd: number) => Math.round(usd * 1e6) / 1e6;

/** Cost of `cpuSeconds` of local compute at `ratePerCpuSecond` dollars. */
export function computeCost(cpuSeconds: number, ratePerCpuSecond: number = DEFAULT_CPU_SECOND_RATE_USD): number {
  return round6(Math.max(0, cpuSeconds) * Math.max(0, ratePerCpuSecond));
}

/** Cost of one Lambda invocation: memory (MB) x duration rounded up to the millisecond x the GB-second price, plus the request. */
export function lambdaCost(options: { durationMs: number; memoryMb: number; pricePerGbSecond?: number; requestUsd?: number }): number {
  const { durationMs, memoryMb, pricePerGbSecond = LAMBDA_GB_SECOND_USD, requestUsd = LAMBDA_REQUEST_USD } = options;
  const billedSeconds = Math.ceil(Math.max(0, durationMs)) / 1000;
  return round6((memoryMb / 1024) * billedSeconds * pricePerGbSecond + requestUsd);
}
