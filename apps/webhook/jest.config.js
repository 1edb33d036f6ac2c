module.exports = require('@seed/jest-config').jestConfigWithKubernetesClient(__dirname);
