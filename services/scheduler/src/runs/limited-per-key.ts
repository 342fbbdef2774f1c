/** `fn` with at most `max` calls pending at once per key; the rest wait in call order. Only for leaf calls (no re-entry). */
export function limitedPerKey<A, R>(max: number, keyOf: (arg: A) => string, fn: (arg: A) => Promise<R>): (arg: A) => Promise<R> {
  const slots = new Map<string, { active: number; waiting: Array<() => void> }>();
  return async (arg) => {
    const key = keyOf(arg);
    let slot = slots.get(key);
    if (!slot) slots.set(key, (slot = { active: 0, waiting: [] }));
    const held = slot;
    if (held.active < max) held.active += 1;
    else await new Promise<void>((resolve) => held.waiting.push(resolve)); // a finishing call hands its place over
    try {
      return await fn(arg);
    } finally {
      const next = held.waiting.shift();
      if (next) next();
      else if (--held.active === 0) slots.delete(key);
    }
  };
}
