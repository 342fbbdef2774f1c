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

/** Whole-pipeline reads in flight per gateway: one per core of the pod's CPU, few enough to bound memory. */
export const WHOLE_READ_SLOTS = 2;

/**
 * Identical reads that arrive together share one run: a request joins the run queued to start after the current
 * one, never the one in progress, so its answer is read after it arrived (a client that just wrote reads its
 * write). Forty concurrent estimates of one pipeline cost two runs, not forty.
 */
export function createCoalescer<T>() {
  interface Slot {
    current: Promise<T>;
    next?: Promise<T>;
  }
  const slots = new Map<string, Slot>();
  const start = (key: string, work: () => Promise<T>): Promise<T> => {
    const slot: Slot = { current: work() };
    slots.set(key, slot);
    const done = () => void (slots.get(key) === slot && !slot.next && slots.delete(key));
    slot.current.then(done, done);
    return slot.current;
  };
  return function run(key: string, work: () => Promise<T>): Promise<T> {
    const slot = slots.get(key);
    if (!slot) return start(key, work);
    slot.next ??= slot.current.then(
      () => start(key, work),
      () => start(key, work),
    );
    return slot.next;
  };
}

export interface WholeReads {
  gate: ReadGate;
  /** Shared runs by key (route and pipeline); the result is the answer's JSON text, built once. */
  shared: ReturnType<typeof createCoalescer<string>>;
  /** Event stream snapshots' data by pipeline: one Buffer that every stream opened together writes as is. */
  snapshots: ReturnType<typeof createCoalescer<Buffer>>;
}

const perGateway = new WeakMap<object, WholeReads>();

/** The whole-pipeline reads of one gateway (one per deps object, so each app built in tests has its own). */
export function wholeReadsOf(deps: object): WholeReads {
  let reads = perGateway.get(deps);
  if (!reads)
    perGateway.set(deps, (reads = { gate: createReadGate(WHOLE_READ_SLOTS), shared: createCoalescer<string>(), snapshots: createCoalescer<Buffer>() }));
  return reads;
}

export const readGateOf = (deps: object): ReadGate => wholeReadsOf(deps).gate;

/** A JSON read that concurrent identical requests share (see createCoalescer), run through the gate. */
export function sharedJson(deps: object, key: string, read: () => Promise<unknown>): Promise<string> {
  const { gate, shared } = wholeReadsOf(deps);
  return shared(key, () => gate.run(async () => JSON.stringify(await read())));
}
