/**
 * Derived input paths (issue 11 item 1) against policies written to fool the analysis
 * (tests/fixtures/input-paths/*.rego): the paths from the real `opa parse --format json`, and a
 * differential check — every fixture compiled to wasm with the pinned OPA and evaluated on the
 * full document and on the document cut to its derived paths must answer the same on every input.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadPolicy, type LoadedPolicy } from '@open-policy-agent/opa-wasm';
import { createClassifier, initSqlParser } from '../../gateway/src/sql';
import { loadBundle } from '../../gateway/src/policy/bundle';
import { inputPathsOfModules } from '../../gateway/src/policy/input-paths';
import { evaluatedInput, pathTrie, reaches, readsQueryText } from '../../gateway/src/policy/input-project';
import { inputKey } from '../../gateway/src/policy/input-json';
import {
  buildBindInput,
  buildFunctionCallInput,
  buildParseInput,
  buildQueryInput,
  buildStartupInput,
} from '../../gateway/src/policy/input';
import type { ConnectionInfo, InputDocument } from '../../gateway/src/policy/types';
import { CLI, gatewayRuntime, REPO } from '../helpers/gateway';

const FIXTURES = path.join(REPO, 'tests', 'fixtures', 'input-paths');
const OPA = execFileSync('go', ['tool', '-n', 'opa'], {
  cwd: path.join(REPO, 'wasm-build'),
  env: { ...process.env, PATH: `/usr/local/go/bin:${process.env.PATH ?? ''}` },
})
  .toString()
  .trim();

const names = fs
  .readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.rego'))
  .map((f) => f.slice(0, -'.rego'.length))
  .sort();

function derived(name: string): string[][] {
  const ast = JSON.parse(
    execFileSync(OPA, ['parse', '--format', 'json', path.join(FIXTURES, `${name}.rego`)]).toString(),
  ) as unknown;
  return inputPathsOfModules([ast]);
}

const EXPECTED: Record<string, string[][]> = {
  annotated: [['connection', 'user']],
  static: [
    ['connection', 'user'],
    ['message', 'sql'],
    ['message', 'type'],
  ],
  dynamic_key: [
    ['connection', '*'],
    ['message', '*'],
  ],
  walk_input: [[]],
  function_arg: [
    ['message', 'parameters', '*', 'value'],
    ['message', 'sql'],
  ],
  builtins: [[]],
  with_input: [[]],
  iteration: [
    ['connection', 'parameters', '*'],
    ['connection', 'user'],
    ['statements', '*', 'command'],
    ['statements', '*', 'has_where'],
    ['statements', '*', 'read_only'],
    ['statements', '*', 'relations', '*', 'name'],
  ],
  narrow: [
    ['statements', '*', 'command'],
    ['time', 'hour'],
  ],
  whole: [[]],
  alias_two: [['statements', '*']],
  fn_flow: [
    ['connection', 'user'],
    ['message', 'statement', 'statements', '*', 'relations', '*', 'name'],
    ['statements', '*'],
  ],
  rule_set: [
    ['statements', '*', 'command'],
    ['statements', '*', 'has_where'],
    ['statements', '*', 'relations', '*', 'name'],
  ],
  rule_first: [['statements', '*']],
  rule_compared: [['statements', '*']],
  rule_value: [
    ['message', 'statement', 'statements', '*'],
    ['statements', '*'],
  ],
  cookbook_columns: [
    ['connection', 'user'],
    ...['access', 'column', 'schema', 'star', 'table'].map((k) => ['statements', '*', 'columns', '*', k]),
    ...['access', 'column', 'schema', 'star', 'table'].map((k) => [
      'statements',
      '*',
      'prepared',
      'inner',
      'columns',
      '*',
      k,
    ]),
    ['statements', '*', 'prepared', 'inner', 'relations', '*', 'name'],
    ['statements', '*', 'prepared', 'inner', 'relations', '*', 'schema'],
    ['statements', '*', 'relations', '*', 'name'],
    ['statements', '*', 'relations', '*', 'schema'],
  ],
  shadow: [
    ['connection', 'parameters', '*'],
    ['message', 'sql'],
    ['statements', '*', 'command'],
    ['statements', '*', 'has_where'],
    ['statements', '*', 'read_only'],
  ],
};

describe('input paths derived from the Rego AST', () => {
  it.each(names)('%s', (name) => {
    expect(derived(name)).toEqual(EXPECTED[name]);
  });

  it('covers every fixture', () => {
    expect(Object.keys(EXPECTED).sort()).toEqual(names);
  });
});

describe('the cut document answers as the full one', () => {
  let policy: LoadedPolicy;
  let inputs: InputDocument[];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgward-input-paths-'));

  beforeAll(async () => {
    await initSqlParser();
    const src = path.join(dir, 'src');
    fs.mkdirSync(src);
    for (const n of names) fs.copyFileSync(path.join(FIXTURES, `${n}.rego`), path.join(src, `${n}.rego`));
    const out = path.join(dir, 'bundle.tar.gz');
    const eps = names.flatMap((n) => ['-e', `fx/${n}/deny`]);
    execFileSync(OPA, ['build', '-b', '.', '-t', 'wasm', ...eps, '-o', out], { cwd: src });
    const bundle = await loadBundle(out);
    policy = await loadPolicy(bundle.wasm);
    inputs = documents();
  }, 120000);

  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const NOW = Date.parse('2026-12-05T23:10:00Z');
  const denials = (name: string, doc: InputDocument): string[] => {
    const r = policy.evaluate(doc, `fx/${name}/deny`) as Array<{ result: string[] }>;
    return [...(r[0]?.result ?? [])].sort();
  };

  it.each(names)('%s', (name) => {
    const full = pathTrie([[]]);
    const cut = pathTrie(derived(name));
    const fired = new Set<string>();
    for (const input of inputs) {
      const whole = denials(
        name,
        evaluatedInput(input, full, () => NOW),
      );
      expect(
        denials(
          name,
          evaluatedInput(input, cut, () => NOW),
        ),
      ).toEqual(whole);
      for (const d of whole) fired.add(d);
    }
    // Every rule of every fixture fires on some input, so each comparison means something.
    expect(fired.size).toBeGreaterThan(0);
  });

  it('would catch a path set narrower than the policy reads', () => {
    const tooNarrow = pathTrie([['message', 'type']]);
    const differs = inputs.some(
      (input) =>
        JSON.stringify(
          denials(
            'static',
            evaluatedInput(input, tooNarrow, () => NOW),
          ),
        ) !==
        JSON.stringify(
          denials(
            'static',
            evaluatedInput(input, pathTrie([[]]), () => NOW),
          ),
        ),
    );
    expect(differs).toBe(true);
  });
});

const conn = (user: string): ConnectionInfo => ({
  id: 'c-1',
  client_addr: '10.0.0.1',
  client_port: 50000,
  tls: { enabled: false, version: null, cipher: null, client_cert_subject: null },
  user,
  database: 'app',
  application_name: 'evil',
  parameters: { user, database: 'app', application_name: 'evil' },
  options: {},
  protocol_version: '3.0',
  authenticated: true,
  transaction_status: 'I',
});

function documents(): InputDocument[] {
  const classifier = createClassifier({ maxEntries: 64 });
  const opts = { maxSqlBytes: 4096 };
  const out: InputDocument[] = [];
  for (const c of [conn('app'), conn('mallory'), conn('readonly_never')]) {
    out.push(buildStartupInput({ ...c, authenticated: false }));
    for (const sql of [
      'SELECT 1 -- c',
      'DELETE FROM secrets',
      'SELECT * FROM t',
      'UPDATE t SET a = 1',
      // Statements that differ only in their text: a cut without it makes them equal.
      'SELECT 1; SELECT 2',
      'DELETE FROM secrets -- c; DELETE FROM secrets',
      'SELECT * FROM users',
      'SELECT name FROM users',
    ]) {
      out.push(buildQueryInput(c, sql, classifier.classify(sql), opts));
      out.push(
        buildParseInput(c, { statementName: 's', sql, paramTypes: [] }, classifier.classify(sql), opts),
      );
    }
    for (const sql of ['SELECT $1', 'SELECT $1 -- x; SELECT $1', 'SELECT * FROM secrets WHERE a = $1']) {
      out.push(
        buildBindInput(
          c,
          {
            portalName: '',
            statement: { name: 's', sql, ...classifier.classify(sql) },
            params: [{ typeOid: 0, format: 0, value: Buffer.from('42') }],
          },
          opts,
        ),
      );
    }
    out.push(buildFunctionCallInput(c, { oid: 1598, args: [{ format: 0, value: Buffer.from('x') }] }));
  }
  return out;
}

describe('the shipped policies (rego/)', () => {
  const shipped = () => {
    const rego = path.join(REPO, 'rego');
    const asts = fs
      .readdirSync(rego)
      .filter((f) => f.endsWith('.rego') && !f.endsWith('_test.rego'))
      .map(
        (f) =>
          JSON.parse(
            execFileSync(OPA, ['parse', '--format', 'json', path.join(rego, f)]).toString(),
          ) as unknown,
      );
    return pathTrie(inputPathsOfModules(asts));
  };

  it('never read a statement SQL text or the message text, so they stay out of the cache key', () => {
    const trie = shipped();
    for (const p of [
      ['statements', '*', 'sql'],
      ['message', 'sql'],
      ['message', 'statement', 'sql'],
      ['message', 'statement', 'statements', '*', 'sql'],
      ['statements', '*', 'prepared', 'inner', 'sql'],
    ]) {
      expect([p, reaches(trie, p)]).toEqual([p, false]);
    }
    // So a session takes a Query's decision again for another text of its shape (frame-judge.ts).
    expect(readsQueryText(trie)).toBe(false);
    // What they do read of a statement: its classification.
    expect(reaches(trie, ['statements', '*', 'command'])).toBe(true);
    expect(reaches(trie, ['statements', '*', 'prepared', 'inner', 'relations', '*', 'name'])).toBe(true);
  });

  it('answer queries that differ only in a constant (pgbench -S) from one decision cache key', async () => {
    await initSqlParser();
    const trie = shipped();
    const classifier = createClassifier({ maxEntries: 64 });
    const c = conn('app');
    const key = (sql: string) =>
      inputKey(
        evaluatedInput(
          buildQueryInput(c, sql, classifier.classify(sql), { maxSqlBytes: 4096 }),
          trie,
          () => 0,
        ),
      );
    const q = 'SELECT abalance FROM pgbench_accounts WHERE aid = ';
    expect(key(`${q}1;`)).toBe(key(`${q}2;`));
    expect(key(`${q}1;`)).not.toBe(key('DELETE FROM pgbench_accounts WHERE aid = 1;'));
  });
});

describe('pgward build', () => {
  const run = (args: string[]) =>
    spawnSync(gatewayRuntime(), [CLI, 'build', ...args], { cwd: os.tmpdir(), encoding: 'utf8' });

  it('records the derived paths in the manifest, from any working directory', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgward-build-'));
    try {
      fs.writeFileSync(
        path.join(dir, 'policy.rego'),
        'package pgward\n\ndecision := {"allow": input.connection.user != "x", "reasons": [], "alerts": []}\n',
      );
      fs.writeFileSync(path.join(dir, 'policy_test.rego'), 'package pgward\n\ntest_x if input.message.sql\n');
      const out = path.join(dir, 'b.tar.gz');
      const r = run([dir, '-o', out]);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const b = await loadBundle(out);
      // The test file is left out, so its input.message.sql is not a path.
      expect(b.manifest.metadata?.['pgward']).toEqual({ input_paths: [['connection', 'user']] });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses data that still declares pgward.input_options, naming the replacement', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgward-build-'));
    try {
      fs.writeFileSync(path.join(dir, 'policy.rego'), 'package pgward\n\ndecision := {"allow": true}\n');
      fs.writeFileSync(path.join(dir, 'data.json'), '{"pgward": {"input_options": {"sql_text": false}}}');
      const r = run([dir, '-o', path.join(dir, 'b.tar.gz')]);
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(/input_options is no longer supported.*metadata\.pgward\.input_paths/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
