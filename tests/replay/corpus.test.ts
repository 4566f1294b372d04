/**
 * The committed replay corpus (tests/replay/corpus/*.jsonl, captured by a live pgward from the
 * scenarios in traffic.ts) replays against the freshly built shipped bundle with no difference
 * from its expectations. Regenerate with PGWARD_UPDATE_REPLAY_CORPUS=1 (see round-trip.test.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { CLI, gatewayRuntime, SHIPPED_BUNDLE } from '../helpers/gateway';
import { runProcess } from '../helpers/psql';
import { PassThrough } from 'node:stream';
import { runReplay } from '../../gateway/src/replay/cli';
import { CORPUS_DIR, CORPUS_EXPECT } from './helpers';

function corpusFiles(): string[] {
  return fs
    .readdirSync(CORPUS_DIR)
    .filter((f) => f.endsWith('.jsonl') && f !== 'expect.jsonl')
    .sort()
    .map((f) => path.join(CORPUS_DIR, f));
}

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
  const r = await runProcess(gatewayRuntime(), [
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

test('--show-decisions lists the candidate decisions, grouped, without a baseline', async () => {
  const files = corpusFiles();
  const r = await runProcess(gatewayRuntime(), [
    CLI,
    'replay',
    ...files,
    '--bundle',
    SHIPPED_BUNDLE,
    '--show-decisions',
    '--format',
    'json',
    '--no-progress',
  ]);
  expect(r.code).toBe(0);
  const report = JSON.parse(r.stdout) as {
    summary: { decisions: { total: number } };
    decisions: Array<{ allow: boolean; type: string; rule_ids: string[]; count: number }>;
  };
  expect(report.decisions.reduce((n, g) => n + g.count, 0)).toBe(report.summary.decisions.total);
  expect(report.decisions.length).toBeLessThan(report.summary.decisions.total);
  // Denials are grouped by the rule ids the shipped policy gives them.
  const deniedBy = new Set(report.decisions.filter((g) => !g.allow).flatMap((g) => g.rule_ids));
  for (const id of ['admin_only', 'unbounded_write', 'parse_error', 'blocked_user'])
    expect(deniedBy).toContain(id);
  const text = await runProcess(gatewayRuntime(), [
    CLI,
    'replay',
    ...files,
    '--bundle',
    SHIPPED_BUNDLE,
    '--show-decisions',
  ]);
  expect(text.stdout).toMatch(/decisions of the candidate bundle, in \d+ group\(s\):/);
  expect(text.stdout).toMatch(/^ {2}deny {2}Query/m);
  expect(text.stdout).toMatch(/^ {6}denials: unbounded_write: DELETE without WHERE/m);
  // Not a terminal: progress comes as plain lines (none for a run this short), never a bar.
  expect(text.stderr).not.toMatch(/\[[\u2588\u2591]/);
});

test('progress lines on a non-TTY', async () => {
  const lines: string[] = [];
  const stream = new PassThrough();
  stream.on('data', (c: Buffer) => lines.push(c.toString('utf8')));
  await runReplay({
    captures: corpusFiles(),
    bundle: SHIPPED_BUNDLE,
    progress: 'lines',
    progressIntervalMs: 1,
    progressStream: stream,
  });
  expect(lines.length).toBeGreaterThan(0);
  expect(lines[0]).toMatch(
    /^pgward replay: \d+% \([\d.]+ of [\d.]+ MiB\), \d+ frames, \d+ decisions, \d+ s\n$/,
  );
});
