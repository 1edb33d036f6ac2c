// @kubernetes/client-node 1.x ships as ES modules, which jest's CommonJS runtime cannot
// require on Node 20: let SWC compile it (and its ESM dependencies) like our own code.
const base = require('@seed/jest-config').jestConfig(__dirname, { testTimeout: 60_000 });
const swc = base.transform['^.+\\.ts$'];

module.exports = {
  ...base,
  transform: { '^.+\\.ts$': swc, '^.+\\.m?js$': swc },
  transformIgnorePatterns: [
    '/node_modules/\\.pnpm/(?!(@kubernetes\\+client-node|openid-client|oauth4webapi|jose|hpagent|jsonpath-plus|@jsep-plugin|jsep)@)',
  ],
};
