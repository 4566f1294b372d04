/** Two projects: unit tests beside the code, integration tests that run real processes. */
const transform = {
  '^.+\\.ts$': ['ts-jest', { diagnostics: false }],
  // cookie 2 (used by fastify's inject via light-my-request) is ESM-only; jest on Node 20 cannot require it.
  '/node_modules/cookie/.+\\.js$': [
    'ts-jest',
    { diagnostics: false, tsconfig: { allowJs: true, module: 'commonjs', isolatedModules: true } },
  ],
};
const transformIgnorePatterns = ['/node_modules/(?!cookie/)'];
module.exports = {
  // Integration tests start real processes; unit tests finish far below this anyway.
  testTimeout: 60000,
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      transform,
      transformIgnorePatterns,
      testMatch: ['<rootDir>/gateway/src/**/*.test.ts'],
    },
    {
      displayName: 'integration',
      testEnvironment: 'node',
      transform,
      transformIgnorePatterns,
      testMatch: ['<rootDir>/tests/**/*.test.ts'],
    },
  ],
};
