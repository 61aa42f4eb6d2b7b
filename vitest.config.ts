import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: { conditions: ['@keyward/source'] },
  ssr: { resolve: { conditions: ['@keyward/source'] } },
  test: {
    include: [
      'packages/*/src/**/*.test.ts',
      'packages/*/test/**/*.test.ts',
      'examples/*/test/**/*.test.ts',
      'test/**/*.test.ts',
    ],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    typecheck: { enabled: false },
  },
});
