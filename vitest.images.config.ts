import { defineConfig } from "vitest/config";

/**
 * `npm run test:images`: builds every image with buildah and runs them with podman against the machine's NATS
 * and PostgreSQL (tests/images). One file, its tests in order (builds first); long timeouts for cold builds.
 */
export default defineConfig({
  test: {
    include: ["tests/images/**/*.test.ts"],
    exclude: ["**/node_modules/**"],
    testTimeout: 30 * 60_000,
    hookTimeout: 120_000,
    pool: "forks",
    maxWorkers: 1,
    fileParallelism: false,
    reporters: process.env.VP_TEST_JSON ? ["default", "json"] : ["default"],
    outputFile: process.env.VP_TEST_JSON ? { json: ".vitest-images.json" } : undefined,
  },
});
