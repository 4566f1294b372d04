/**
 * A policy change (postgres made read-only, replay_customers made sensitive) produces the expected
 * diff report in text, JSON and JUnit XML, with the documented exit codes.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildBundleWithData, CLI, gatewayRuntime, REPO, SHIPPED_BUNDLE } from '../helpers/gateway';
import { runProcess } from '../helpers/psql';
import { CORPUS_DIR, CORPUS_EXPECT } from './helpers';
import type { ChangeGroup } from '../../gateway/src/replay/diff';

jest.setTimeout(180_000);

const corpus = (): string[] =>
  fs
    .readdirSync(CORPUS_DIR)
    .filter((f) => f.endsWith('.jsonl') && f !== 'expect.jsonl')
    .sort()
    .map((f) => path.join(CORPUS_DIR, f));

let candidate = '';

beforeAll(async () => {
  const shipped = JSON.parse(fs.readFileSync(path.join(REPO, 'rego', 'data.json'), 'utf8')) as {
    pgward: { read_only_users: string[]; sensitive_tables: string[] };
  };
  candidate = await buildBundleWithData({
    read_only_users: [...shipped.pgward.read_only_users, 'postgres'],
    sensitive_tables: [...shipped.pgward.sensitive_tables, 'public.replay_customers'],
  });
});

const replay = (...args: string[]) => runProcess(gatewayRuntime(), [CLI, 'replay', ...args]);

/** A minimal XML well-formedness check (elements nest and close) returning the elements seen. */
function parseXml(xml: string): Array<{ name: string; attrs: Record<string, string>; text: string }> {
  const body = xml.replace(/^<\?xml[^?]*\?>\s*/, '');
  const stack: Array<{ name: string; attrs: Record<string, string>; text: string }> = [];
  const all: typeof stack = [];
  const re = /<(\/?)([A-Za-z_][\w.-]*)((?:\s+[\w:.-]+="[^"<]*")*)\s*(\/?)>|([^<]+)/gy;
  let m: RegExpExecArray | null;
  let pos = 0;
  while ((m = re.exec(body)) !== null) {
    pos = re.lastIndex;
    if (m[5] !== undefined) {
      if (stack.length === 0 && m[5].trim() !== '') throw new Error('text outside the root element');
      if (stack.length > 0) stack[stack.length - 1]!.text += m[5];
      continue;
    }
    const [, close, name, attrText, selfClose] = m;
    if (close) {
      const top = stack.pop();
      if (!top || top.name !== name) throw new Error(`mismatched </${name}>`);
      continue;
    }
    const attrs: Record<string, string> = {};
    for (const a of attrText!.matchAll(/([\w:.-]+)="([^"]*)"/g)) attrs[a[1]!] = a[2]!;
    const el = { name: name!, attrs, text: '' };
    all.push(el);
    if (!selfClose) stack.push(el);
  }
  if (pos !== body.length || stack.length > 0) throw new Error(`malformed XML at ${pos}`);
  return all;
}

test('text, JSON and JUnit reports of a policy change; exit code 1', async () => {
  const files = corpus();
  const json = await replay(
    ...files,
    '--bundle',
    candidate,
    '--baseline',
    SHIPPED_BUNDLE,
    '--format',
    'json',
  );
  expect(json.code).toBe(1);
  const report = JSON.parse(json.stdout) as {
    comparisons: Array<{
      against: string;
      changed: number;
      groups: ChangeGroup[];
      by_kind: Record<string, number>;
    }>;
  };
  const { groups, changed } = report.comparisons[0]!;
  expect(report.comparisons[0]!.against).toBe('baseline');
  expect(groups.reduce((n, g) => n + g.count, 0)).toBe(changed);
  // One group per (fingerprint, message type, kind, rule ids).
  const groupKeys = groups.map((g) => JSON.stringify([g.fingerprint, g.type, g.kind, g.rule_ids]));
  expect(new Set(groupKeys).size).toBe(groups.length);
  // postgres writes are now denied; reads of replay_customers now alert.
  const denied = groups.filter((g) => g.kind === 'allow-to-deny');
  expect(denied.length).toBeGreaterThan(2);
  expect(denied.every((g) => g.example.user === 'postgres')).toBe(true);
  expect(denied.some((g) => /^INSERT INTO replay_orders/.test(g.example.sql ?? ''))).toBe(true);
  const alerted = groups.filter((g) => g.kind === 'alerts');
  expect(
    alerted.some(
      (g) =>
        /replay_customers/.test(g.example.sql ?? '') &&
        g.example.alerts_added.includes('sensitive_table (medium)') &&
        g.rule_ids.includes('sensitive_table'),
    ),
  ).toBe(true);
  expect(groups.some((g) => g.kind === 'deny-to-allow')).toBe(false);
  expect(/[^\x00-\x7f]/.test(json.stdout)).toBe(false);

  const text = await replay(...files, '--bundle', candidate, '--baseline', SHIPPED_BUNDLE);
  expect(text.code).toBe(1);
  expect(text.stdout).toContain(`${changed} change(s) in ${groups.length} group(s) against baseline`);
  expect(text.stdout).toMatch(/allow-to-deny\s+Query\s+x\d+/);
  expect(text.stdout).toMatch(/example: user=postgres/);
  expect(text.stdout).toMatch(/alerts added:\s+sensitive_table \(medium\)/);
  expect(text.stdout).toMatch(/^total\s+\d+/m);

  const junit = await replay(
    ...files,
    '--bundle',
    candidate,
    '--baseline',
    SHIPPED_BUNDLE,
    '--format',
    'junit',
  );
  expect(junit.code).toBe(1);
  const els = parseXml(junit.stdout);
  expect(els[0]!.name).toBe('testsuites');
  expect(Number(els[0]!.attrs.failures)).toBe(groups.length);
  const failures = els.filter((e) => e.name === 'failure');
  expect(failures).toHaveLength(groups.length);
  expect(failures.filter((f) => f.attrs.type === 'allow-to-deny')).toHaveLength(denied.length);
});

test('exit codes: 0 without changes, 1 against expectations, 2 on errors', async () => {
  const files = corpus();
  const same = await replay(...files, '--bundle', SHIPPED_BUNDLE, '--baseline', SHIPPED_BUNDLE);
  expect(same.code).toBe(0);
  expect(same.stdout).toContain('baseline: no changes');

  const expectRun = await replay(
    ...files,
    '--bundle',
    candidate,
    '--expect',
    CORPUS_EXPECT,
    '--format',
    'json',
  );
  expect(expectRun.code).toBe(1);

  // --update-expect rewrites the file; the next comparison is clean.
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pgward-expect-'));
  const file = path.join(tmp, 'expect.jsonl');
  expect((await replay(...files, '--bundle', candidate, '--expect', file, '--update-expect')).code).toBe(0);
  expect((await replay(...files, '--bundle', candidate, '--expect', file)).code).toBe(0);
  fs.rmSync(tmp, { recursive: true, force: true });

  const badFlag = await replay(files[0]!, '--bundle', SHIPPED_BUNDLE, '--frobnicate');
  expect(badFlag.code).toBe(2);
  expect(badFlag.stderr.trim().split('\n')).toHaveLength(1);
  expect(badFlag.stderr).toContain('--frobnicate');
  const badFormat = await replay(files[0]!, '--bundle', SHIPPED_BUNDLE, '--format', 'xml');
  expect(badFormat.code).toBe(2);
  const missing = await replay(path.join(CORPUS_DIR, 'nope.jsonl'), '--bundle', SHIPPED_BUNDLE);
  expect(missing.code).toBe(2);
  expect(missing.stderr).toContain('PGWARD_ERR_REPLAY_INPUT');
  const noBundle = await replay(files[0]!);
  expect(noBundle.code).toBe(2);
});
