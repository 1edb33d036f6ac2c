// One jest preset for every workspace package: SWC transform (about twice as fast as
// ts-jest), tests under test/, and a reporter that records the package's counts so
// scripts/test can print one summary line for the whole monorepo.
const path = require('node:path');

/** @param {string} packageDir the package's directory (pass __dirname) */
function jestConfig(packageDir, overrides = {}) {
  return {
    rootDir: packageDir,
    testEnvironment: 'node',
    testMatch: ['<rootDir>/test/**/*.test.ts'],
    transform: {
      '^.+\\.ts$': [
        '@swc/jest',
        {
          jsc: {
            parser: { syntax: 'typescript', decorators: true },
            target: 'es2022',
            transform: { legacyDecorator: true, decoratorMetadata: true },
          },
          module: { type: 'commonjs' },
        },
      ],
    },
    reporters: ['default', path.join(__dirname, 'counts-reporter.js')],
    ...overrides,
  };
}

/**
 * For packages that load @kubernetes/client-node: 1.x ships as ES modules, which jest's
 * CommonJS runtime cannot require on Node 20, so SWC compiles it (and its ESM
 * dependencies) like our own code. `transform` and `transformIgnorePatterns` are this
 * function's to set; other overrides apply as in `jestConfig`.
 */
function jestConfigWithKubernetesClient(packageDir, overrides = {}) {
  const base = jestConfig(packageDir, overrides);
  const swc = base.transform['^.+\\.ts$'];
  return {
    ...base,
    transform: { '^.+\\.ts$': swc, '^.+\\.m?js$': swc },
    transformIgnorePatterns: [
      '/node_modules/\\.pnpm/(?!(@kubernetes\\+client-node|openid-client|oauth4webapi|jose|hpagent|jsonpath-plus|@jsep-plugin|jsep)@)',
    ],
  };
}

module.exports = { jestConfig, jestConfigWithKubernetesClient };
