// Adds up the per-package counts written by counts-reporter.js and prints the one line
// CI reads: "Tests: N passed, N failed, N skipped". A package whose run crashed before
// reporting is counted as a failure so a broken suite can never look green.
const fs = require('node:fs');
const path = require('node:path');

const [dir, ...expected] = process.argv.slice(2);
const totals = { passed: 0, failed: 0, skipped: 0 };
const seen = new Set();
for (const file of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
  const counts = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'));
  seen.add(counts.name);
  for (const key of Object.keys(totals)) totals[key] += counts[key];
}
for (const name of expected) {
  if (!seen.has(name)) {
    console.error(`${name}: no test results were recorded`);
    totals.failed += 1;
  }
}
console.log(`Tests: ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
process.exitCode = totals.failed > 0 ? 1 : 0;
