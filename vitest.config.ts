import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["packages/*/src/**/*.test.ts", "services/*/src/**/*.test.ts", "lambdas/*/**/*.test.ts", "tests/**/*.test.ts"],
    // The fault suite (vitest.faults.config.ts) runs after this one, alone; the soak (vitest.soak.config.ts) and the
    // images test (vitest.images.config.ts) on demand.
    exclude: ["**/node_modules/**", "tests/faults/**", "tests/soak/**", "tests/images/**"],
    globalSetup: ["packages/testkit/src/global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: "forks",
    // Two cores: more workers only make ffmpeg and Postgres fight.
    maxWorkers: 2,
    // .ci/run sets VP_TEST_JSON to collect counts from this suite and the fault suite.
    reporters: process.env.VP_TEST_JSON ? ["default", "json"] : ["default"],
    outputFile: process.env.VP_TEST_JSON ? { json: ".vitest-results.json" } : undefined,
  },
});
