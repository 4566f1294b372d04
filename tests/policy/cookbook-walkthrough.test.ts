/**
 * docs/policy-cookbook.md, "Your first site rule, step by step", followed word for word on a fresh
 * copy of the checkout (the files git tracks, as they are in the working tree; no build outputs but
 * dist/, copied, and node_modules, linked): each `<!-- walkthrough:file PATH -->` block is written
 * to PATH, each `<!-- walkthrough:run -->` block runs in bash from the copy's root and must print
 * the documented output (the lines of the ```text block that follows, in order, `…` matching
 * anything; exit status 0, commands that fail show their code with `echo "exit code $?"`), and the
 * `<!-- walkthrough:serve -->` command runs in the background against the local PostgreSQL until
 * the end — on free ports: 6432 and 9432 are replaced in it and in every later command, as the
 * section tells the reader to do when they are taken.
 */
import { spawn, spawnSync, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { REPO } from '../helpers/gateway';

const SECTION = '## Your first site rule, step by step';

type Step =
  | { kind: 'file'; path: string; content: string }
  | { kind: 'run' | 'serve'; commands: string; expected: string[] };

function walkthroughSteps(): Step[] {
  const doc = fs.readFileSync(path.join(REPO, 'docs/policy-cookbook.md'), 'utf8');
  const start = doc.indexOf(SECTION);
  if (start < 0) throw new Error(`no "${SECTION}" in docs/policy-cookbook.md`);
  const end = doc.indexOf('\n## ', start + SECTION.length);
  const section = doc.slice(start, end < 0 ? undefined : end);
  const steps: Step[] = [];
  const block =
    /<!-- walkthrough:(file|run|serve)(?: (\S+))? -->\s*```\w+\n([\s\S]*?)```(?:\s*```text\n([\s\S]*?)```)?/g;
  for (const m of section.matchAll(block)) {
    const [, kind, file, body, output] = m;
    if (kind === 'file') steps.push({ kind, path: file!, content: body! });
    else {
      if (output === undefined) throw new Error(`a walkthrough:${kind} block without its output: ${body}`);
      steps.push({ kind: kind as 'run' | 'serve', commands: body!.trim(), expected: output.split('\n') });
    }
  }
  return steps;
}

const steps = walkthroughSteps();

/** A documented output line: trimmed, `…` matches anything, the rest literally. */
function lineMatcher(line: string): RegExp {
  const parts = line
    .trim()
    .split('…')
    .map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${parts.join('.*')}$`);
}

function significant(expected: string[]): string[] {
  return expected.filter((l) => l.trim() !== '' && l.trim() !== '…');
}

/** The documented lines not found in the output, in order (inOrder) or anywhere. */
function missingLines(actual: string, expected: string[], inOrder: boolean): string[] {
  const lines = actual.split('\n').map((l) => l.trim());
  const missing: string[] = [];
  let i = 0;
  for (const e of significant(expected)) {
    const re = lineMatcher(e);
    const at = inOrder ? lines.findIndex((l, k) => k >= i && re.test(l)) : lines.findIndex((l) => re.test(l));
    if (at < 0) missing.push(e);
    else if (inOrder) i = at + 1;
  }
  return missing;
}

/** The tracked files as they are in the working tree, dist/ copied, node_modules linked. */
function freshCopy(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgward-walkthrough-'));
  const files = execFileSync('git', ['ls-files', '-z'], { cwd: REPO, encoding: 'utf8' }).split('\0');
  for (const f of files.filter(Boolean)) {
    const src = path.join(REPO, f);
    if (!fs.existsSync(src)) continue;
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.copyFileSync(src, path.join(dir, f));
    fs.chmodSync(path.join(dir, f), fs.statSync(src).mode);
  }
  if (!fs.existsSync(path.join(REPO, 'dist/cli.js')))
    throw new Error("dist/ missing: run 'make build' first");
  fs.cpSync(path.join(REPO, 'dist'), path.join(dir, 'dist'), { recursive: true });
  fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'));
  return dir;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

const env = { ...process.env, PATH: `/usr/local/go/bin:${process.env['PATH'] ?? ''}` };
let dir = '';
let ports: Record<string, number> = {};
let gateway: ChildProcess | null = null;
let gatewayOutput = '';

/** The command as the test runs it: the documented ports replaced once the gateway runs elsewhere. */
function withPorts(commands: string): string {
  return Object.entries(ports).reduce(
    (c, [doc, port]) => c.replace(new RegExp(`\\b${doc}\\b`, 'g'), String(port)),
    commands,
  );
}

function run(commands: string): string {
  const r = spawnSync('bash', ['-c', `exec 2>&1\n${withPorts(commands)}`], {
    cwd: dir,
    env,
    encoding: 'utf8',
    timeout: 170_000,
  });
  if (r.status !== 0)
    throw new Error(`exit status ${r.status} of:\n${commands}\n--- output ---\n${r.stdout}`);
  return r.stdout;
}

async function serve(commands: string, expected: string[]): Promise<void> {
  ports = { '6432': await freePort(), '9432': await freePort() };
  gateway = spawn('bash', ['-c', `exec ${withPorts(commands)}`], {
    cwd: dir,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<never>((_, reject) =>
    gateway!.once('exit', (code) => reject(new Error(`the gateway exited (${code}):\n${gatewayOutput}`))),
  );
  const ready = new Promise<void>((resolve) => {
    const onData = (chunk: Buffer): void => {
      gatewayOutput += chunk.toString('utf8');
      if (missingLines(gatewayOutput, withPorts(expected.join('\n')).split('\n'), false).length === 0)
        resolve();
    };
    gateway!.stdout!.on('data', onData);
    gateway!.stderr!.on('data', onData);
  });
  const timeout = new Promise<never>((_, reject) =>
    setTimeout(
      () => reject(new Error(`the documented lines did not appear:\n${gatewayOutput}`)),
      30_000,
    ).unref(),
  );
  await Promise.race([ready, exited, timeout]);
}

beforeAll(() => {
  dir = freshCopy();
});

afterAll(async () => {
  if (gateway && gateway.exitCode === null && gateway.signalCode === null) {
    const g = gateway;
    const done = new Promise((resolve) => g.once('exit', resolve));
    g.kill('SIGTERM');
    const kill = setTimeout(() => g.kill('SIGKILL'), 15_000);
    await done;
    clearTimeout(kill);
  }
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
}, 30_000);

test('the section documents what issue 11 asks the walkthrough to show', () => {
  const documented = steps.flatMap((s) =>
    s.kind === 'file' ? [] : significant(s.expected).map((l) => l.trim()),
  );
  const commands = steps.flatMap((s) => (s.kind === 'file' ? [] : [s.commands])).join('\n');
  for (const cmd of [
    'make policy-test',
    'make policy',
    'node dist/cli.js explain',
    'psql',
    'node dist/cli.js replay',
  ])
    expect(commands).toContain(cmd);
  expect(steps.filter((s) => s.kind === 'file').map((s) => (s as { path: string }).path)).toEqual([
    'rego/table_copies.rego',
    'rego/table_copies_test.rego',
  ]);
  expect(steps.filter((s) => s.kind === 'serve')).toHaveLength(1);
  for (const line of [
    'test-policy: all checks passed',
    'check-policy-types: FAIL: undefined input field input.connection.application_nam (table_copies.rego:8; no field "application_nam")',
    'exit code 2',
    '"rule": "etl_only_table_copies",',
    'exit code 1',
    'exit code 0',
    'ERROR:  permission denied by policy: CREATE TABLE AS is reserved for the etl application',
    'pgward_decisions_total{outcome="deny",phase="message",code="",rule="etl_only_table_copies"} 1',
    'expect: 4 changes in 2 groups (allow-to-deny: 4)',
  ])
    expect(documented).toContain(line);
});

describe.each(steps.map((s, i) => [i + 1, s] as const))('step %i', (_, step) => {
  const label =
    step.kind === 'file' ? `write ${step.path}` : `${step.kind}: ${step.commands.split('\n').join(' && ')}`;
  test(
    label.length > 150 ? `${label.slice(0, 150)}…` : label,
    async () => {
      if (step.kind === 'file') {
        fs.mkdirSync(path.dirname(path.join(dir, step.path)), { recursive: true });
        fs.writeFileSync(path.join(dir, step.path), step.content);
        return;
      }
      if (step.kind === 'serve') return serve(step.commands, step.expected);
      const out = run(step.commands);
      const missing = missingLines(out, withPorts(step.expected.join('\n')).split('\n'), true);
      if (missing.length > 0)
        throw new Error(`documented output not printed:\n${missing.join('\n')}\n--- output ---\n${out}`);
    },
    180_000,
  );
});
