const { jestConfigWithKubernetesClient, withSharedClusterProject } = require('@seed/jest-config');

module.exports = withSharedClusterProject(
  jestConfigWithKubernetesClient(__dirname, { testTimeout: 60_000 }),
);
