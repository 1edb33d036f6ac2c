// Writes this package's test counts to $SEED_TEST_RESULTS/<package>.json; the monorepo's
// test script adds them up into one "Tests: N passed, N failed" line.
const fs = require('node:fs');
const path = require('node:path');

class CountsReporter {
  constructor(globalConfig) {
    this.rootDir = globalConfig.rootDir;
  }

  onRunComplete(_contexts, results) {
    const dir = process.env.SEED_TEST_RESULTS;
    if (!dir) return;
    const { name } = JSON.parse(fs.readFileSync(path.join(this.rootDir, 'package.json'), 'utf8'));
    fs.mkdirSync(dir, { recursive: true });
    const counts = {
      name,
      passed: results.numPassedTests,
      failed: results.numFailedTests + results.numRuntimeErrorTestSuites,
      skipped: results.numPendingTests + results.numTodoTests,
    };
    fs.writeFileSync(path.join(dir, `${name.replace('/', '__')}.json`), JSON.stringify(counts));
  }
}

module.exports = CountsReporter;
