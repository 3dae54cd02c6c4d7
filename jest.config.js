/** Jest runs the TypeScript sources through ts-jest; process tests spawn the compiled dist/ build. */
module.exports = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  testMatch: ['<rootDir>/node/src/**/*.test.ts', '<rootDir>/client/src/**/*.test.ts', '<rootDir>/cli/src/**/*.test.ts', '<rootDir>/operator/src/**/*.test.ts', '<rootDir>/test/**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  testTimeout: 60000,
};
