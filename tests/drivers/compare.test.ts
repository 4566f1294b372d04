/**
 * scripts/driver-suite-compare.js, the comparator behind `make drivers`, on small `go test -json`
 * streams: equal results pass, a test failing only through pgward fails the comparison and is
 * named, a test failing in both runs is listed but not a difference, lib/pq's racy leak check does
 * not count, TempDir-based subtest names compare equal, and a stream without results is refused.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO } from '../helpers/gateway';

const SCRIPT = path.join(REPO, 'scripts', 'driver-suite-compare.js');
let dir: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgward-compare-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

type Ev = { Action: string; Package: string; Test?: string; Output?: string };

/** Events of one test that ends with `action` (pass | fail | skip), with an output line. */
function goTest(pkg: string, name: string, action: string, output = ''): Ev[] {
  return [
    { Action: 'run', Package: pkg, Test: name },
    ...(output ? [{ Action: 'output', Package: pkg, Test: name, Output: `    ${output}\n` }] : []),
    { Action: action, Package: pkg, Test: name },
  ];
}

function write(name: string, events: Ev[]): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, events.map((e) => JSON.stringify(e)).join('\n') + '\n');
  return f;
}

function compare(direct: Ev[], pgward: Ev[], extra: string[] = []): Promise<{ code: number; out: string }> {
  const a = write(`d-${Math.random()}.json`, direct);
  const b = write(`p-${Math.random()}.json`, pgward);
  return new Promise((resolve) => {
    execFile(process.execPath, [SCRIPT, '--name', 'suite', ...extra, a, b], (err, stdout, stderr) => {
      const code = err ? Number((err as { code?: number }).code ?? 1) : 0;
      resolve({ code, out: stdout + stderr });
    });
  });
}

const P = 'example.com/drv';

test('the same results: exit 0', async () => {
  const run = [
    ...goTest(P, 'TestA', 'pass'),
    ...goTest(P, 'TestB', 'skip'),
    ...goTest(P, 'TestC', 'fail', 'boom'),
  ];
  const r = await compare(run, run);
  expect(r.code).toBe(0);
  expect(r.out).toContain('same results directly and through pgward');
  // failing in both runs: listed, not a difference
  expect(r.out).toMatch(/failing directly too.*\n\s+example.com\/drv\/TestC/);
});

test('a test failing only through pgward: exit 1, named with its output', async () => {
  const direct = [...goTest(P, 'TestA', 'pass'), ...goTest(P, 'TestEmpty', 'pass')];
  const pgward = [
    ...goTest(P, 'TestA', 'pass'),
    ...goTest(P, 'TestEmpty', 'fail', 'prepared statement "1" is unknown to pgward (26000)'),
  ];
  const r = await compare(direct, pgward);
  expect(r.code).toBe(1);
  expect(r.out).toContain('example.com/drv/TestEmpty: direct pass, pgward fail');
  expect(r.out).toContain('unknown to pgward (26000)');
});

test('a test that never ended through pgward (the binary panicked) counts as failed; one never run as absent', async () => {
  const direct = [...goTest(P, 'TestA', 'pass'), ...goTest(P, 'TestB', 'pass')];
  const pgward = [{ Action: 'run', Package: P, Test: 'TestA' }];
  const r = await compare(direct, pgward);
  expect(r.code).toBe(1);
  expect(r.out).toContain('example.com/drv/TestA: direct pass, pgward fail');
  expect(r.out).toContain('example.com/drv/TestB: direct pass, pgward absent');
});

test("per-test processes: lib/pq's leak check alone is counted as passed; other process failures count", async () => {
  const proc = (name: string, action: string, output: string): Ev[] => [
    ...goTest(`${P}:${name}`, name, 'pass'),
    { Action: 'output', Package: `${P}:${name}`, Output: output },
    { Action: action, Package: `${P}:${name}` },
  ];
  const direct = [...proc('TestA', 'pass', 'PASS\n'), ...proc('TestB', 'pass', 'PASS\n')];
  const pgward = [
    ...proc('TestA', 'fail', 'connection still active: pid=1; query="select 1"\n'),
    ...proc('TestB', 'fail', 'panic: boom\n'),
  ];
  const r = await compare(direct, pgward);
  expect(r.code).toBe(1);
  expect(r.out).toContain('leak check raced');
  expect(r.out).not.toContain('example.com/drv:TestA (process): direct pass, pgward fail');
  expect(r.out).toContain('example.com/drv:TestB (process): direct pass, pgward fail');
});

test('--differing-out lists the top-level tests that differ; with --rerun a difference must repeat to count', async () => {
  const direct = [
    ...goTest(P, 'TestSlow', 'pass'),
    ...goTest(P, 'TestEmpty/sub', 'pass'),
    ...goTest(P, 'TestOk', 'pass'),
  ];
  const pgward = [
    ...goTest(P, 'TestSlow', 'fail', 'context deadline exceeded'),
    ...goTest(P, 'TestEmpty/sub', 'fail'),
    ...goTest(P, 'TestOk', 'pass'),
  ];
  const list = path.join(dir, 'differing');
  const first = await compare(direct, pgward, ['--differing-out', list]);
  expect(first.code).toBe(1);
  expect(fs.readFileSync(list, 'utf8')).toBe(`${P}\tTestEmpty\n${P}\tTestSlow\n`);
  // Run again: TestSlow agrees (flaky), TestEmpty/sub still differs.
  const again = [
    write('d2.json', [...goTest(P, 'TestSlow', 'pass'), ...goTest(P, 'TestEmpty/sub', 'pass')]),
    write('p2.json', [...goTest(P, 'TestSlow', 'pass'), ...goTest(P, 'TestEmpty/sub', 'fail')]),
  ];
  const second = await compare(direct, pgward, ['--rerun', ...again]);
  expect(second.code).toBe(1);
  expect(second.out).toMatch(/flaky[^\n]*: 1\n\s+example.com\/drv\/TestSlow/);
  expect(second.out).toContain('DIFFERENT through pgward: 1');
  expect(second.out).toContain('example.com/drv/TestEmpty/sub: direct pass, pgward fail');
  // Both agree when run again: nothing counts.
  const calm = [
    write('d3.json', goTest(P, 'TestSlow', 'pass')),
    write('p3.json', goTest(P, 'TestSlow', 'pass')),
  ];
  const third = await compare(direct.slice(0, 2), pgward.slice(0, 3), ['--rerun', ...calm]);
  expect(third.code).toBe(0);
});

test('subtest names made from t.TempDir() compare equal', async () => {
  const name = (n: string): string =>
    `TestParseConfig/servicefile='/tmp/TestParseConfig${n}/001/pg_service.conf'`;
  const r = await compare(goTest(P, name('3775027728'), 'pass'), goTest(P, name('4082044125'), 'pass'));
  expect(r.code).toBe(0);
});

test('a stream without test results (a build failure) is refused: exit 2', async () => {
  const r = await compare(
    [{ Action: 'output', Package: P, Output: 'build failed\n' }],
    goTest(P, 'TestA', 'pass'),
  );
  expect(r.code).toBe(2);
  expect(r.out).toContain('no test results');
});

test("--results: make test's closing line counts passes through pgward, differences as failures, both-way failures apart", async () => {
  const out = path.join(dir, 'results.json');
  const direct = [
    ...goTest(P, 'TestA', 'pass'),
    ...goTest(P, 'TestB', 'skip'),
    ...goTest(P, 'TestC', 'fail', 'boom'),
    ...goTest(P, 'TestD', 'pass'),
  ];
  const same = await compare(direct, direct, ['--results', out]);
  expect(same.code).toBe(0);
  expect(JSON.parse(fs.readFileSync(out, 'utf8'))).toEqual({
    suite: 'suite',
    passed: 2,
    failed: 0,
    skipped: 1,
    failingDirectlyToo: 1,
  });
  const worse = [
    ...direct.slice(0, -2),
    { Action: 'run', Package: P, Test: 'TestD' },
    { Action: 'fail', Package: P, Test: 'TestD' },
  ];
  const differs = await compare(direct, worse, ['--results', out]);
  expect(differs.code).toBe(1);
  expect(JSON.parse(fs.readFileSync(out, 'utf8'))).toMatchObject({ passed: 1, failed: 1 });
});
