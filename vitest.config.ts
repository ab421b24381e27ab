import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests boot real guests: give them time, and keep them from running all at
    // once on a 2-core machine (each file runs in its own worker; files run one at a time).
    testTimeout: 20_000,
    hookTimeout: 30 * 60_000,
    fileParallelism: false,
    reporters: ['default'],
  },
});
