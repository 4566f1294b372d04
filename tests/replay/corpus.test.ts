/**
 * The committed replay corpus (tests/replay/corpus/*.jsonl, captured by a live pgward from the
 * scenarios in traffic.ts) replays against the freshly built shipped bundle with no difference
 * from its expectations. Regenerate with PGWARD_UPDATE_REPLAY_CORPUS=1 (see round-trip.test.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { CLI, SHIPPED_BUNDLE } from '../helpers/gateway';
import { runProcess } from '../helpers/psql';
import { CORPUS_DIR, CORPUS_EXPECT } from './helpers';

jest.setTimeout(120_000);

test('the corpus replays to its expected decisions under the shipped policies', async () => {
  const files = fs
    .readdirSync(CORPUS_DIR)
    .filter((f) => f.endsWith('.jsonl') && f !== 'expect.jsonl')
    .sort()
    .map((f) => path.join(CORPUS_DIR, f));
  expect(files.map((f) => path.basename(f))).toEqual([
    'attacks.jsonl',
    'orm-app.jsonl',
    'pgbench.jsonl',
    'psql-admin.jsonl',
  ]);
  const total = files.reduce((n, f) => n + fs.statSync(f).size, 0) + fs.statSync(CORPUS_EXPECT).size;
  expect(total).toBeLessThan(1024 * 1024);
  const r = await runProcess(process.execPath, [
    CLI,
    'replay',
    ...files,
    '--bundle',
    SHIPPED_BUNDLE,
    '--expect',
    CORPUS_EXPECT,
    '--format',
    'json',
    '--no-progress',
  ]);
  expect(r.stderr).toBe('');
  const report = JSON.parse(r.stdout) as {
    summary: { decisions: { total: number; deny: number } };
    comparisons: Array<{ changed: number; groups: unknown[] }>;
  };
  expect(report.comparisons[0]!.groups).toEqual([]);
  expect(report.comparisons[0]!.changed).toBe(0);
  expect(r.code).toBe(0);
  expect(report.summary.decisions.total).toBeGreaterThan(300);
  expect(report.summary.decisions.deny).toBeGreaterThan(10);
});
