/**
 * At most `slots` whole-pipeline reads (every node's row, then the answer's JSON) at once; the others wait their
 * turn. Each holds a few times the pipeline's size in memory while it runs, so on a pipeline at its limits the
 * reads a client can start at once (a snapshot per event stream, GETs, exports, estimates) would otherwise add up
 * past the pod's memory limit, and their CPU would starve /health.
 */
export function createReadGate(slots: number) {
  let busy = 0;
  const waiting: Array<() => void> = [];
  return {
    async run<T>(work: () => Promise<T>): Promise<T> {
      if (busy < slots) busy++;
      else await new Promise<void>((resolve) => waiting.push(resolve));
      try {
        return await work();
      } finally {
        // The slot passes straight to the next waiter, if any.
        const next = waiting.shift();
        if (next) next();
        else busy--;
      }
    },
  };
}

export type ReadGate = ReturnType<typeof createReadGate>;

/** Whole-pipeline reads in flight per gateway: enough to keep both cores busy, few enough to bound memory. */
export const WHOLE_READ_SLOTS = 4;

const gates = new WeakMap<object, ReadGate>();

/** The gate of one gateway (one per deps object, so each app built in tests has its own). */
export function readGateOf(deps: object): ReadGate {
  let gate = gates.get(deps);
  if (!gate) gates.set(deps, (gate = createReadGate(WHOLE_READ_SLOTS)));
  return gate;
}
