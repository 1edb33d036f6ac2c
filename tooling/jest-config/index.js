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
    // Tests drive real parts (sockets, processes, VMs) on 2 loaded cores: jest's 5 s is a
    // scheduling hiccup there, not a hang. Speed is the benches' to judge.
    testTimeout: 30_000,
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

/**
 * Splits a package's tests in two jest projects: test/on-node/ runs on one local cluster
 * (API server and node) that @seed/testing's global set-up starts for all its files, and
 * only when one of them is selected; every other test file runs as before.
 */
function withSharedClusterProject(config) {
  const { reporters, ...project } = config;
  const onNode = '<rootDir>/test/on-node/';
  const fromTesting = (file) =>
    require.resolve(`@seed/testing/dist/${file}`, { paths: [project.rootDir] });
  return {
    reporters,
    testTimeout: project.testTimeout,
    projects: [
      { ...project, displayName: 'unit', testPathIgnorePatterns: ['/node_modules/', onNode] },
      {
        ...project,
        displayName: 'on-node',
        testMatch: [`${onNode}**/*.test.ts`],
        globalSetup: fromTesting('shared-cluster-setup.js'),
        globalTeardown: fromTesting('shared-cluster-teardown.js'),
      },
    ],
  };
}

module.exports = { jestConfig, jestConfigWithKubernetesClient, withSharedClusterProject };
