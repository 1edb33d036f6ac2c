module.exports = require('@seed/jest-config').jestConfig(__dirname);
