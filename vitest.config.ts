import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    // Two test files at a time even on a 2-core CI machine (vitest's default there is one): most
    // integration files spend their time waiting on brokers, timers and child processes, and
    // every wait in them is a bound, not a measurement.
    maxWorkers: 2,
  },
});
