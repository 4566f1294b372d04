/**
 * scripts/test-summary.js, make test's closing line: it sums what each stage counted, fails when a
 * stage left no counts or any failure was counted, and its last line is the plain
 * "N passed, N failed, N skipped" line a CI reader looks for.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO } from '../helpers/gateway';

const SCRIPT = path.join(REPO, 'scripts', 'test-summary.js');

function run(files: Record<string, unknown>): { code: number; out: string; last: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgward-summary-'));
  try {
    for (const [f, v] of Object.entries(files)) fs.writeFileSync(path.join(dir, f), JSON.stringify(v));
    const r = spawnSync(process.execPath, [SCRIPT, dir], { encoding: 'utf8' });
    const lines = r.stdout.trim().split('\n');
    return { code: r.status ?? -1, out: r.stdout + r.stderr, last: lines[lines.length - 1] ?? '' };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const jestRun = (passed: number, failed = 0, pending = 0) => ({
  numTotalTests: passed + failed + pending,
  numPassedTests: passed,
  numFailedTests: failed,
  numPendingTests: pending,
  numTodoTests: 0,
  numRuntimeErrorTestSuites: 0,
  numTotalTestSuites: 3,
});
const all = {
  'unit.json': jestRun(10),
  'integration.json': jestRun(5, 0, 1),
  'integration-bun.json': jestRun(0),
  'opa.json': { suite: 'opa test rego/', passed: 7, failed: 0, total: 7 },
  'driver-pgx.json': { suite: 'pgx', passed: 20, failed: 0, skipped: 2, failingDirectlyToo: 0 },
};

test('every stage counted: the sum, as the last line, exit 0', () => {
  const r = run(all);
  expect(r.code).toBe(0);
  expect(r.last).toBe('42 passed, 0 failed, 3 skipped');
});

test('a stage without counts fails and is named', () => {
  const { ['opa.json']: _opa, ...rest } = all;
  const r = run(rest);
  expect(r.code).toBe(1);
  expect(r.out).toContain('opa.json');
  expect(
    run({ 'unit.json': jestRun(1), 'integration.json': jestRun(1), 'opa.json': all['opa.json'] }).code,
  ).toBe(1);
});

test('a failure counted anywhere fails the step', () => {
  const r = run({ ...all, 'integration.json': jestRun(5, 1) });
  expect(r.code).toBe(1);
  expect(r.last).toBe('42 passed, 1 failed, 2 skipped');
});
