import { defineConfig } from "vitest/config";

// Browser tests: Playwright (playwright-core) drives Debian's chromium
// against a real hub that hack/uireplay runs. One file at a time, in order.
export default defineConfig({
  test: {
    environment: "node",
    include: ["e2e/**/*.e2e.ts"],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: "forks",
    poolOptions: { forks: { singleFork: true } },
  },
});
