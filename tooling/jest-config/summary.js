// Adds up the per-package counts written by counts-reporter.js and prints the one line
// CI reads: "Tests: N passed, N failed, N skipped". Every workspace package with a test
// script must have reported: one whose run crashed (or never ran) counts as a failure,
// so a broken suite can never look green.
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '../..');
const WORKSPACE_DIRS = ['apps', 'packages', 'tooling', 'bench'];

function packagesWithTests() {
  const dirs = [path.join(root, 'nix'), path.join(root, 'deploy')];
  for (const parent of WORKSPACE_DIRS) {
    const full = path.join(root, parent);
    if (fs.existsSync(full))
      dirs.push(...fs.readdirSync(full).map((name) => path.join(full, name)));
  }
  return dirs
    .map((dir) => path.join(dir, 'package.json'))
    .filter((file) => fs.existsSync(file))
    .map((file) => JSON.parse(fs.readFileSync(file, 'utf8')))
    .filter((pkg) => pkg.scripts && pkg.scripts.test)
    .map((pkg) => pkg.name);
}

const dir = process.argv[2];
const totals = { passed: 0, failed: 0, skipped: 0 };
const reported = new Set();
for (const file of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
  const counts = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'));
  reported.add(counts.name);
  for (const key of Object.keys(totals)) totals[key] += counts[key];
}
for (const name of packagesWithTests()) {
  if (!reported.has(name)) {
    console.error(`${name}: no test results were recorded`);
    totals.failed += 1;
  }
}
console.log(`Tests: ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
process.exitCode = totals.failed > 0 ? 1 : 0;
