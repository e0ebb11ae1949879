import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Need a Docker engine and locally built images: `npm run test:containers` (vitest.containers.config.ts).
    exclude: ["test/containers/**", "**/node_modules/**"],
    // Picks env-provided services, testcontainers, or the local stack, and stops what it started.
    globalSetup: ["test/support/global-setup.ts"],
    // Integration and fault tests drive real servers: replication catch-up and broker restarts take time.
    testTimeout: 120_000,
    hookTimeout: 300_000,
    teardownTimeout: 120_000,
    // One file at a time: 2 cores and shared servers, and fault tests stop servers other files use.
    fileParallelism: false,
    pool: "forks",
  },
});
