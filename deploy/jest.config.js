module.exports = require('@seed/jest-config').jestConfigWithKubernetesClient(__dirname, {
  testTimeout: 120_000,
});
