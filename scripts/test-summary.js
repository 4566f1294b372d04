#!/usr/bin/env node
/**
 * make test's closing line: what every test stage counted, summed, as the one line a CI reader
 * looks for ("N passed, N failed, N skipped", alone on the last line). Each stage leaves its counts in
 * .tmp/test-results/ (jest --json for unit and integration, the latter under Node and under Bun, scripts/test-policy.sh for opa test,
 * scripts/driver-suite-compare.js for each driver suite); make test empties that folder first.
 * A stage whose counts are missing, or any failure counted, fails this step: the line never claims
 * more than ran.
 */
'use strict';
const fs = require('fs');
const path = require('path');

const dir = process.argv[2] ?? path.join(__dirname, '..', '.tmp', 'test-results');
const required = ['unit.json', 'integration.json', 'integration-bun.json', 'opa.json'];

function main() {
  const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.json')) : [];
  const missing = required.filter((f) => !files.includes(f));
  if (!files.some((f) => f.startsWith('driver-'))) missing.push('driver-*.json');
  if (missing.length) {
    console.error(`test-summary: no counts from ${missing.join(', ')} in ${dir}: did every stage run?`);
    return 1;
  }
  const rows = [];
  for (const f of files.sort()) {
    const r = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
    if ('numTotalTests' in r) {
      // jest --json
      rows.push({
        suite: `jest ${f.replace(/\.json$/, '')} (${r.numTotalTestSuites} files)`,
        passed: r.numPassedTests,
        failed: r.numFailedTests + (r.numRuntimeErrorTestSuites ?? 0),
        skipped: r.numPendingTests + r.numTodoTests,
        note: '',
      });
    } else {
      rows.push({
        suite: r.suite,
        passed: r.passed,
        failed: r.failed,
        skipped: r.skipped ?? 0,
        note: r.failingDirectlyToo ? `; ${r.failingDirectlyToo} failing directly too, not counted` : '',
      });
    }
  }
  const sum = (k) => rows.reduce((a, r) => a + r[k], 0);
  for (const r of rows)
    console.log(`  ${r.suite}: ${r.passed} pass, ${r.failed} fail, ${r.skipped} skip${r.note}`);
  // The plain form, alone on its line, that a CI reader takes as the run's count in any language.
  console.log('make test, every stage that counts tests:');
  console.log(`${sum('passed')} passed, ${sum('failed')} failed, ${sum('skipped')} skipped`);
  return sum('failed') === 0 && sum('passed') > 0 ? 0 : 1;
}

process.exitCode = main();
