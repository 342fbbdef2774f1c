/**
 * US dollars per wall-clock second of ffmpeg work, wherever it runs. It is the Lambda price of the
 * video-merger's size (3008 MB x $0.0000166667 per GB-second ~ $0.00005/s), so a node costs the same
 * whether the executor's own ffmpeg or the Lambda did the work.
 */
export const COMPUTE_COST_PER_SECOND_USD = 0.00005;

/** Cost of `seconds` of compute, rounded to 6 decimals (a millionth of a dollar). */
export function computeCost(seconds: number): number {
  return Math.round(Math.max(0, seconds) * COMPUTE_COST_PER_SECOND_USD * 1e6) / 1e6;
}
