module.exports = require('@seed/jest-config').jestConfigWithKubernetesClient(__dirname, {
  testTimeout: 60_000,
});
