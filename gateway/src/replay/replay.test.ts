import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  encodeBind,
  encodeParse,
  encodeQuery,
  encodeReadyForQuery,
  encodeStartupMessage,
  encodeSync,
  PROTOCOL_3_0,
} from '../protocol';
import { encodeParameterStatus } from '../protocol/backend/parameter-status';
import { createClassifier, initSqlParser } from '../sql';
import type { Decision, InputDocument, PolicyEngine } from '../policy/types';
import type { CaptureRecord } from '../capture/format';
import { makeHeader } from '../capture/format';
import { Replayer, replayContentHash, type ReplayDecision } from './replay';
import { diffDecisions, groupChanges, readExpectFile, toExpect, writeExpectFile } from './diff';
import { formatJson, formatJunit, formatText, Tally, countKinds, type Report } from './report';

beforeAll(() => initSqlParser());

/** Denies DELETE, and any message sent while the transaction is failed; alerts on SELECTs of `secrets`. */
function engine(denyDeletes: boolean): PolicyEngine & { seen: InputDocument[] } {
  const seen: InputDocument[] = [];
  return {
    seen,
    evaluate(input: InputDocument): Decision {
      seen.push(input);
      const cmds = input.statements.map((s) => s.command);
      const deny = (denyDeletes && cmds.includes('DELETE')) || input.parse_error !== null;
      const alerts = input.statements.some((s) => s.relations.some((r) => r.name === 'secrets'))
        ? [{ rule: 'sensitive', severity: 'medium', message: 'secrets read' }]
        : [];
      return {
        id: String(seen.length),
        allow: !deny,
        denials: deny
          ? [{ rule: 'test_deny', message: `denied ${cmds.join(',') || input.parse_error}`, priority: 1 }]
          : [],
        reasons: deny ? [`denied ${cmds.join(',') || input.parse_error}`] : [],
        alerts,
        sqlstate: null,
        session_parameters: {},
        revision: 'r',
        error_code: null,
        eval_seconds: 0,
      };
    },
    bundle: () => null,
  };
}

const b64 = (b: Buffer): string => b.toString('base64');

function capture(c = 'c1'): CaptureRecord[] {
  return [
    {
      t: 1,
      conn: c,
      ev: 'connection',
      client_addr: '10.0.0.1',
      client_port: 1,
      tls: { enabled: false, version: null, cipher: null, client_cert_subject: null },
      user: 'app',
      database: 'db',
      application_name: null,
      parameters: { user: 'app' },
      options: {},
      protocol_version: '3.0',
    },
    { t: 2, conn: c, dir: 'F', frame: b64(encodeStartupMessage(PROTOCOL_3_0, [['user', 'app']])) },
    { t: 3, conn: c, ev: 'auth', protocol_version: '3.2' },
    { t: 4, conn: c, dir: 'B', frame: b64(encodeReadyForQuery('I')) },
    { t: 5, conn: c, dir: 'F', ts: 'I', frame: b64(encodeQuery('SELECT * FROM secrets')) },
    { t: 6, conn: c, dir: 'F', ts: 'I', frame: b64(encodeParse('del', 'DELETE FROM t WHERE id = $1')) },
    { t: 7, conn: c, dir: 'F', ts: 'I', frame: b64(encodeSync()) },
    {
      t: 8,
      conn: c,
      dir: 'F',
      ts: 'T',
      frame: b64(encodeBind('', 'del', [{ format: 0, value: Buffer.from('1') }])),
    },
    { t: 9, conn: c, ev: 'close', outcome: 'client_terminated' },
  ];
}

function replay(
  engines: PolicyEngine[],
  records: CaptureRecord[] = capture(),
  file = 'cap.jsonl',
): ReplayDecision[][] {
  const lanes: ReplayDecision[][] = engines.map(() => []);
  const r = new Replayer(engines, {
    classify: createClassifier({ maxEntries: 100 }).classify,
    onDecision: (l, d) => lanes[l]!.push(d),
  });
  r.beginFile(file, makeHeader({ source: 'pgward' }));
  for (const rec of records) r.record(rec);
  return lanes;
}

test('rebuilds the connection context, transaction status and statement registry per engine', () => {
  const allowAll = engine(false);
  const strict = engine(true);
  const [a, s] = replay([allowAll, strict]);
  expect(a!.map((d) => [d.type, d.allow])).toEqual([
    ['StartupMessage', true],
    ['Query', true],
    ['Parse', true],
    ['Bind', true],
  ]);
  // Keys come from the content; both lanes give a message the same key.
  expect(a!.map((d) => d.key)).toEqual(s!.map((d) => d.key));
  for (const d of a!) expect(d.key).toMatch(/^[0-9a-f]{16}#0$/);
  expect(allowAll.seen[3]!.connection).toMatchObject({
    transaction_status: 'T',
    authenticated: true,
    protocol_version: '3.2',
    client_addr: '10.0.0.1',
  });
  expect(allowAll.seen[0]!.connection.authenticated).toBe(false);
  // The strict lane denied the Parse, so its Bind names a statement pgward never let through.
  expect(s!.map((d) => d.allow)).toEqual([true, true, false, false]);
  expect(a![1]!.alerts).toHaveLength(1);
});

test('diff classifies changes; reports render', () => {
  const [a, s] = replay([engine(false), engine(true)]);
  const changes = diffDecisions(a!.map(toExpect), s!.map(toExpect));
  expect(changes.map((c) => c.kind)).toEqual(['allow-to-deny', 'allow-to-deny']);
  const withoutAlert = s!.map(toExpect).map((e, i) => (i === 1 ? { ...e, alerts: [] } : e));
  expect(diffDecisions(withoutAlert, s!.map(toExpect))[0]).toMatchObject({
    kind: 'alerts',
    alerts_added: ['sensitive (medium)'],
  });
  expect(diffDecisions(s!.map(toExpect).slice(0, 2), s!.map(toExpect).slice(1)).map((c) => c.kind)).toEqual([
    'added',
    'added',
    'removed',
  ]);
  const tally = new Tally();
  s!.forEach((d) => tally.add(d));
  const report: Report = {
    summary: {
      captures: ['cap.jsonl'],
      bundle: 'b',
      revision: 'r',
      records: 9,
      frames: 6,
      connections: 1,
      decisions: tally.total,
      by_type: tally.byType,
      seconds: 0.1,
      frames_per_second: 60,
      warnings: [],
    },
    comparisons: [
      {
        against: 'baseline',
        source: 'b0 <&>',
        compared: 4,
        changed: changes.length,
        groups: groupChanges(changes),
        by_kind: countKinds(changes),
      },
    ],
  };
  expect(formatText(report)).toMatch(/allow-to-deny\s+Parse/);
  const xml = formatJunit(report);
  expect(xml).toContain('failures="2"');
  expect(xml).toContain('b0 &lt;&amp;&gt;');
});

/**
 * A large synthetic capture: `conns` connections (interleaved), each running the same few
 * statements `repeat` times. The strict engine denies the DELETEs and the parse errors.
 */
function workload(
  conns: number,
  repeat: number,
  prefix: string,
  interleave: (i: number) => number,
): CaptureRecord[] {
  const out: CaptureRecord[] = [];
  const perConn = capture('x').slice(0, 4);
  const body = [
    encodeQuery('SELECT * FROM secrets'),
    encodeQuery('DELETE FROM t'),
    encodeQuery('DELETE FROM u'),
    encodeQuery('SELEC oops'),
    encodeQuery('SELECT 1'),
  ];
  const ids = Array.from({ length: conns }, (_, i) => `${prefix}-${interleave(i)}`);
  for (const id of ids) for (const r of perConn) out.push({ ...r, conn: id } as CaptureRecord);
  for (let k = 0; k < repeat; k++)
    for (const id of ids)
      for (const f of body) out.push({ t: 10 + k, conn: id, dir: 'F', ts: 'I', frame: b64(f) });
  for (const id of ids) out.push({ t: 1e9, conn: id, ev: 'close', outcome: 'client_terminated' });
  return out;
}

test('a large capture with a few distinct changes gives one group per change in every format', () => {
  const records = workload(10, 400, 'c', (i) => i); // 10 x 400 x 5 = 20,000 judged queries
  const [a, s] = replay([engine(false), engine(true)], records);
  const changes = diffDecisions(a!.map(toExpect), s!.map(toExpect));
  // The two DELETEs change (different relations: different fingerprints); the parse error is
  // denied by both, the SELECTs allowed by both.
  expect(changes).toHaveLength(10 * 400 * 2);
  const groups = groupChanges(changes);
  expect(groups.map((g) => [g.kind, g.type, g.count])).toEqual([
    ['allow-to-deny', 'Query', 4000],
    ['allow-to-deny', 'Query', 4000],
  ]);
  expect(groups[0]!.rule_ids).toEqual(['test_deny']);
  expect(groups[0]!.example.sql).toBe('DELETE FROM t');
  const tally = new Tally();
  s!.forEach((d) => tally.add(d));
  const report: Report = {
    summary: {
      captures: ['big.jsonl'],
      bundle: 'b',
      revision: 'r',
      records: records.length,
      frames: 0,
      connections: 10,
      decisions: tally.total,
      by_type: tally.byType,
      seconds: 1,
      frames_per_second: 0,
      warnings: [],
    },
    comparisons: [
      {
        against: 'baseline',
        source: 'b0',
        compared: s!.length,
        changed: changes.length,
        groups,
        by_kind: countKinds(changes),
      },
    ],
  };
  const text = formatText(report);
  expect(text.match(/^ {2}allow-to-deny/gm)).toHaveLength(2);
  expect(text.split('\n').length).toBeLessThan(40);
  expect(text).toContain('8000 change(s) in 2 group(s)');
  const json = JSON.parse(formatJson(report)) as Report;
  expect(json.comparisons[0]!.groups).toHaveLength(2);
  expect(json.comparisons[0]!.by_kind).toEqual({ 'allow-to-deny': 8000 });
  const xml = formatJunit(report);
  expect(xml.match(/<testcase /g)).toHaveLength(3); // 2 groups + the unchanged ones
  expect(xml.match(/<failure /g)).toHaveLength(2);
  expect(xml.length).toBeLessThan(5000);
  expect(/[^\x00-\x7f]/.test(xml + text + formatJson(report))).toBe(false);
});

test('keys and the expectations file do not change when the same workload is captured again', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgward-expect-'));
  try {
    const first = replay(
      [engine(true)],
      workload(4, 20, 'aaaa', (i) => i),
      'capture-1.jsonl',
    )[0]!;
    // Other connection ids, another file name, connections started in another order.
    const again = replay(
      [engine(true)],
      workload(4, 20, 'bbbb', (i) => 3 - i),
      'capture-2.jsonl',
    )[0]!;
    const f1 = path.join(dir, 'one.jsonl');
    const f2 = path.join(dir, 'two.jsonl');
    writeExpectFile(f1, first.map(toExpect));
    writeExpectFile(f2, again.map(toExpect));
    expect(fs.readFileSync(f2, 'utf8')).toBe(fs.readFileSync(f1, 'utf8'));
    expect(diffDecisions(readExpectFile(f1), again.map(toExpect))).toEqual([]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

describe('SQL text is read under the lexical state the server reported, as the live session read it', () => {
  const backslash = "SELECT 'a\\' || 'b'";
  function withStatus(statuses: Array<[string, string]>): CaptureRecord[] {
    const base = capture().slice(0, 4);
    return [
      ...base,
      ...statuses.map(([n, v], i): CaptureRecord => ({
        t: 4.1 + i / 100,
        conn: 'c1',
        dir: 'B',
        frame: b64(encodeParameterStatus(n, v)),
      })),
      { t: 5, conn: 'c1', dir: 'F', ts: 'I', frame: b64(encodeQuery(backslash)) },
      { t: 6, conn: 'c1', dir: 'F', ts: 'I', frame: b64(encodeQuery('SELECT 1')) },
    ];
  }

  test('standard_conforming_strings=off: text with a backslash is refused like live, the rest judged', () => {
    const [off] = replay([engine(false)], withStatus([['standard_conforming_strings', 'off']]));
    const q = off!.filter((d) => d.type === 'Query');
    expect(q.map((d) => [d.allow, d.error_code])).toEqual([
      [false, 'PGWARD_ERR_SQL_LEXICAL_STRING_SYNTAX'],
      [true, null],
    ]);
    // The report shows the refused text as sent; its key is that of '' (expectations match by key).
    expect(q.map((d) => d.sql)).toEqual([backslash, 'SELECT 1']);
    const [refused] = q;
    const emptyKey = replayContentHash(
      'Query',
      refused!.user,
      refused!.database,
      refused!.application_name,
      '',
    );
    expect(refused!.key).toBe(`${emptyKey}#0`);
    // Back on: the same text is ordinary again.
    const [on] = replay(
      [engine(false)],
      withStatus([
        ['standard_conforming_strings', 'off'],
        ['standard_conforming_strings', 'on'],
      ]),
    );
    expect(on!.filter((d) => d.type === 'Query').map((d) => d.allow)).toEqual([true, true]);
  });

  test('a state the live session cannot read ended it: nothing after it is judged, with a warning', () => {
    const judged: string[] = [];
    const r2 = new Replayer([engine(false)], {
      classify: createClassifier({ maxEntries: 100 }).classify,
      onDecision: (_l, d) => judged.push(d.type),
    });
    r2.beginFile('cap.jsonl', makeHeader({ source: 'pgward' }));
    for (const rec of withStatus([['client_encoding', 'NOT_AN_ENCODING']])) r2.record(rec);
    expect(judged).toEqual(['StartupMessage']);
    expect(r2.stats.warnings.join('\n')).toMatch(
      /client_encoding NOT_AN_ENCODING.*later messages not judged/,
    );
  });

  test('a refusal the capture recorded (unread) is replayed as recorded, whatever the text reads as now', () => {
    const unread = {
      code: 'PGWARD_ERR_SQL_LEXICAL_CHANGING',
      reason: 'pipelined behind a Bind the server has not answered',
      sqlstate: '0A000',
    };
    const recs: CaptureRecord[] = [
      ...capture().slice(0, 4),
      // Text replay reads fine (standard strings), refused live because of the pipeline.
      { t: 5, conn: 'c1', dir: 'F', ts: 'I', frame: b64(encodeQuery(backslash)), unread },
      // Literals redacted: the refused Parse's text was withheld; the unnamed statement is gone.
      { t: 6, conn: 'c1', dir: 'F', ts: 'I', frame: b64(encodeParse('', '')), unread },
      { t: 7, conn: 'c1', dir: 'F', ts: 'I', frame: b64(encodeBind('', '', [])) },
      { t: 8, conn: 'c1', dir: 'F', ts: 'I', frame: b64(encodeQuery('SELECT 1')) },
    ];
    const [d] = replay([engine(false)], recs);
    expect(d!.slice(1).map((x) => [x.type, x.allow, x.error_code, x.sqlstate])).toEqual([
      ['Query', false, 'PGWARD_ERR_SQL_LEXICAL_CHANGING', '0A000'],
      ['Parse', false, 'PGWARD_ERR_SQL_LEXICAL_CHANGING', '0A000'],
      ['Bind', false, null, '26000'],
      ['Query', true, null, null],
    ]);
    expect(d![1]!.reasons).toEqual([unread.reason]);
  });

  test('a malformed unread stops the replay with PGWARD_ERR_REPLAY_INPUT', () => {
    for (const unread of [
      { code: 'NOT_A_CODE', reason: 'x', sqlstate: '0A000' },
      { code: 'PGWARD_ERR_SQL_LEXICAL_CHANGING', reason: 'x', sqlstate: 'bad' },
      'refused',
    ]) {
      const recs = [
        ...capture().slice(0, 4),
        { t: 5, conn: 'c1', dir: 'F', ts: 'I', frame: b64(encodeQuery('SELECT 1')), unread },
      ] as CaptureRecord[];
      expect(() => replay([engine(false)], recs)).toThrow(/PGWARD_ERR_REPLAY_INPUT|malformed "unread"/);
    }
  });
});
