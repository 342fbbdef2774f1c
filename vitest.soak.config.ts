import { defineConfig } from "vitest/config";

/**
 * `npm run soak`: SOAK_MINUTES (default 10) of SOAK_NODES (default 5,000) nodes with
 * faults 1-4 at random intervals, on the fault suite's own nats-server and PostgreSQL cluster. Not part of
 * `npm test` or `npm run test:faults` (CI does not run it). The test's budget is the soak plus its start-up and
 * drain.
 */
const minutes = Number(process.env.SOAK_MINUTES ?? 10);

export default defineConfig({
  test: {
    include: ["tests/soak/**/*.test.ts"],
    exclude: ["**/node_modules/**"],
    testTimeout: Math.ceil((minutes + 15) * 60_000),
    hookTimeout: 300_000,
    pool: "forks",
    maxWorkers: 1,
    fileParallelism: false,
  },
});
