import { defineConfig } from 'vitest/config';

// The UI performance benchmark (make bench-ui): a synthetic 1,000-asset catalog
// and a 100,000-partition asset, measured in headless Chromium. It prints the
// figures; it fails only when the pages do not show what they should.
export default defineConfig({
  test: {
    include: ['bench/**/*.run.ts'],
    environment: 'node',
    testTimeout: 600_000,
    hookTimeout: 600_000,
    fileParallelism: false,
    reporters: ['verbose'],
  },
});
