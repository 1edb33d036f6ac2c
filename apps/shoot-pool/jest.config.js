// Builds run the real nix and some tests wait on slow builds on purpose.
module.exports = require('@seed/jest-config').jestConfig(__dirname, { testTimeout: 60_000 });
