import { defineConfig } from 'vitest/config';

// Unit tests: the pure logic under src/ (status summaries, run-length ranges,
// partition keys), in Node.
export default defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
});
