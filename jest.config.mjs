// jest (`npm test`) on the compiled suite in dist/test: `npm test` builds first. Each test file runs in a Node
// process of its own, one after another (test/jest/runner.ts says why); stack traces point into the TypeScript.
export default {
  rootDir: import.meta.dirname,
  roots: ['<rootDir>/dist/test'],
  testMatch: ['**/*.test.js'],
  runner: '<rootDir>/dist/test/jest/runner.js',
  reporters: ['default', '<rootDir>/dist/test/jest/summary.js'],
  // node:test had no default timeout: a test or hook without its own may take 10 minutes, so a hang fails instead of waiting forever
  testTimeout: 600_000,
};
