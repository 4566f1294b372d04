import {
  encodeBind,
  encodeParse,
  encodeQuery,
  encodeReadyForQuery,
  encodeStartupMessage,
  encodeSync,
  PROTOCOL_3_0,
} from '../protocol';
import { createClassifier, initSqlParser } from '../sql';
import type { Decision, InputDocument, PolicyEngine } from '../policy/types';
import type { CaptureRecord } from '../capture/format';
import { makeHeader } from '../capture/format';
import { Replayer, type ReplayDecision } from './replay';
import { diffDecisions, toExpect } from './diff';
import { formatJunit, formatText, Tally, countKinds, type Report } from './report';

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

function capture(): CaptureRecord[] {
  const c = 'c1';
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

function replay(engines: PolicyEngine[]): ReplayDecision[][] {
  const lanes: ReplayDecision[][] = engines.map(() => []);
  const r = new Replayer(engines, {
    classify: createClassifier({ maxEntries: 100 }).classify,
    onDecision: (l, d) => lanes[l]!.push(d),
  });
  r.beginFile('cap.jsonl', makeHeader({ source: 'pgward' }));
  for (const rec of capture()) r.record(rec);
  return lanes;
}

test('rebuilds the connection context, transaction status and statement registry per engine', () => {
  const allowAll = engine(false);
  const strict = engine(true);
  const [a, s] = replay([allowAll, strict]);
  expect(a!.map((d) => [d.key, d.type, d.allow])).toEqual([
    ['cap.jsonl#c1#0', 'StartupMessage', true],
    ['cap.jsonl#c1#1', 'Query', true],
    ['cap.jsonl#c1#2', 'Parse', true],
    ['cap.jsonl#c1#3', 'Bind', true],
  ]);
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
  expect(changes.map((c) => c.kind)).toEqual(['allow→deny', 'allow→deny']);
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
      { against: 'baseline', source: 'b0 <&>', compared: 4, changes, by_kind: countKinds(changes) },
    ],
  };
  expect(formatText(report)).toMatch(/allow→deny\s+Parse/);
  const xml = formatJunit(report);
  expect(xml).toContain('failures="2"');
  expect(xml).toContain('b0 &lt;&amp;&gt;');
});
