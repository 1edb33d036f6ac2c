const { jestConfigWithKubernetesClient } = require('@seed/jest-config');

// The node agent's test talks to a real API server through client-node (ESM).
module.exports = jestConfigWithKubernetesClient(__dirname, { testTimeout: 60_000 });
