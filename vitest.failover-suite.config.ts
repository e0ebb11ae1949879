import { defineConfig } from "vitest/config";
import base from "./vitest.config.js";

// `npm run test:failover-suite`: issue 23's whole fault suite (test/fault/failover-suite). It makes its own
// hosts (network namespaces, needs root), PostgreSQL servers and Kafka, so it needs none of the shared
// services the global setup starts. `npm test` runs the same file as a bounded subset.
export default defineConfig({
  test: {
    ...base.test,
    include: ["test/fault/failover-suite/**/*.test.ts"],
    exclude: ["**/node_modules/**"],
    globalSetup: [],
  },
});
