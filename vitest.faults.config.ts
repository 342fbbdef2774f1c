import { defineConfig } from "vitest/config";

/**
 * `npm run test:faults`: fault scenarios that kill, freeze and restart processes and servers. Each file
 * starts its own nats-server and PostgreSQL cluster (tests/faults/harness.ts), so faults never touch the
 * machine's shared services; files run one at a time (they are CPU-heavy on two cores).
 */
export default defineConfig({
  test: {
    include: ["tests/faults/**/*.test.ts"],
    exclude: ["**/node_modules/**"],
    testTimeout: 300_000,
    hookTimeout: 180_000,
    pool: "forks",
    maxWorkers: 1,
    fileParallelism: false,
    reporters: process.env.VP_TEST_JSON ? ["default", "json"] : ["default"],
    outputFile: process.env.VP_TEST_JSON ? { json: ".vitest-faults.json" } : undefined,
  },
});
