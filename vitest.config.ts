import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["packages/*/src/**/*.test.ts", "services/*/src/**/*.test.ts", "lambdas/*/**/*.test.ts", "tests/**/*.test.ts"],
    exclude: ["**/node_modules/**"],
    globalSetup: ["packages/testkit/src/global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: "forks",
    // Two cores: more workers only make ffmpeg and Postgres fight.
    maxWorkers: 2,
  },
});
