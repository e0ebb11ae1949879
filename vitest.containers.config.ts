import { defineConfig } from "vitest/config";
import base from "./vitest.config.js";

// `npm run test:containers`: the tests that need a Docker engine and the images `npm run images -- up` builds.
// Kept out of `npm test`, which runs on any machine without an engine. Same settings, other files.
export default defineConfig({
  test: { ...base.test, include: ["test/containers/**/*.test.ts"], exclude: ["**/node_modules/**"] },
});
