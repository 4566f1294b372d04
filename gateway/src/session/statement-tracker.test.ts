/**
 * The statement log driven by the session core (statement-tracker.ts): the real statement log
 * (audit/statement-log.ts) writing to a line sink, a clock the test moves, and the core fed the
 * answers PostgreSQL 15 gives (skip-until-Sync after an error; one CommandComplete per statement of
 * a simple Query; COPY; PortalSuspended).
 */
import {
  encodeBind,
  encodeCopyData,
  encodeCopyDone,
  encodeExecute,
  encodeParse,
  encodeQuery,
  encodeSync,
} from '../protocol';
import { initSqlParser } from '../sql';
import { createMetrics } from '../metrics/metrics';
import { createStatementLog, type StatementRecord } from '../audit/statement-log';
import { loadSqlNormalizer } from '../audit/redact';
import { Harness, pg, syntaxErrorFor, fields, types } from './core-harness.test-helper';

const P = (sql: string, name = ''): Buffer => encodeParse(name, sql);
const B = (stmt = '', portal = ''): Buffer => encodeBind(portal, stmt, []);
const E = (portal = '', maxRows = 0): Buffer => encodeExecute(portal, maxRows);
const S = (): Buffer => encodeSync();
const Q = (sql: string): Buffer => encodeQuery(sql);

beforeAll(async () => {
  await initSqlParser();
  await loadSqlNormalizer();
});

/** A logged-in core whose statement log writes synchronously into `lines`, with a test clock. */
function logged(enabled = true) {
  const lines: string[] = [];
  const clock = { t: 1_000_000 };
  const log = createStatementLog(
    {
      enabled,
      sink: 'stdout',
      file: { max_bytes: 1 << 20, max_files: 1 },
      max_buffered_bytes: 1 << 20,
      redact: { parameters: true, literals: false },
    },
    {
      metrics: createMetrics(),
      now: () => clock.t,
      schedule: (fn) => fn(),
      sink: { write: (l) => (lines.push(l), true), healthy: () => true, close: () => Promise.resolve() },
    },
  );
  const h = new Harness({ statementLog: log });
  h.login();
  const records = (): StatementRecord[] =>
    lines.map((l) => JSON.parse(l) as StatementRecord).filter((r) => r.event === 'statement');
  return { h, log, clock, records };
}

describe('statement log from the session core', () => {
  it('gives a multi-statement Query one record with a tag per statement, rows and duration', () => {
    const { h, clock, records } = logged();
    h.client(Q('INSERT INTO t VALUES (1), (2); UPDATE t SET x = 1'));
    clock.t += 5;
    h.server(pg.complete('INSERT 0 2'), pg.complete('UPDATE 3'));
    expect(records()).toEqual([]); // open until its ReadyForQuery
    clock.t += 2;
    h.server(pg.ready());
    expect(records()).toEqual([
      expect.objectContaining({
        message_type: 'Query',
        sql: 'INSERT INTO t VALUES (1), (2); UPDATE t SET x = 1',
        status: 'ok',
        command_tags: ['INSERT 0 2', 'UPDATE 3'],
        rows: 5,
        sqlstate: null,
        duration_ms: 7,
      }),
    ]);
  });

  it('keeps every tag whole, however long (rows of a big INSERT)', () => {
    const { h, records } = logged();
    h.client(Q('INSERT INTO t SELECT generate_series(1, 1234567890)'));
    h.server(pg.complete('INSERT 0 1234567890'), pg.ready());
    expect(records()[0]).toMatchObject({ command_tags: ['INSERT 0 1234567890'], rows: 1234567890 });
  });

  it('a pipeline with an error in the middle: ok, error with its SQLSTATE, then skipped', () => {
    const { h, clock, records } = logged();
    h.client(
      P('INSERT INTO t VALUES (1)'),
      B(),
      E(),
      P('SELECT 1 / x FROM t'), // x = 0: fails at Execute (1 / 0 would fail at Bind, folded when planned)
      B(),
      E(),
      P('UPDATE t SET x = 2'),
      B(),
      E(),
      S(),
    );
    clock.t += 3;
    h.server(pg.parseComplete(), pg.bindComplete(), pg.complete('INSERT 0 1'));
    expect(records().map((r) => r.status)).toEqual(['ok']); // the Execute's CommandComplete ends a Bind
    clock.t += 4;
    const down = h.server(pg.parseComplete(), pg.bindComplete(), pg.error('22012', 'division by zero'));
    expect(types(down.down)).toBe('12E');
    h.server(pg.ready());
    const r = records();
    expect(r.map((x) => [x.message_type, x.sql, x.status, x.sqlstate, x.command_tags, x.rows])).toEqual([
      ['Bind', 'INSERT INTO t VALUES (1)', 'ok', null, ['INSERT 0 1'], 1],
      ['Bind', 'SELECT 1 / x FROM t', 'error', '22012', [], null],
      ['Bind', 'UPDATE t SET x = 2', 'skipped', null, [], null],
    ]);
    expect(r.map((x) => x.duration_ms)).toEqual([3, 7, null]);
  });

  it('never takes a denied message’s sentinel error for a server error; what follows is skipped', () => {
    const { h, records } = logged();
    const r = h.client(P('SELECT 1'), B(), E(), P('DELETE FROM t'), B(), E(), P('SELECT 2'), B(), E(), S());
    expect(types(r.up)).toBe('PBEPBEPBES');
    const down = h.server(
      pg.parseComplete(),
      pg.bindComplete(),
      pg.complete('SELECT 1'),
      syntaxErrorFor(r.up[3]!),
      pg.ready(),
    );
    expect(types(down.down)).toBe('12CEZ');
    expect(fields(down.down[3]!).C).toBe('42501');
    const recs = records().map((x) => [x.message_type, x.sql, x.status, x.sqlstate, x.command_tags]);
    expect(recs).toContainEqual(['Bind', 'SELECT 1', 'ok', null, ['SELECT 1']]);
    expect(recs).toContainEqual(['Parse', 'DELETE FROM t', 'denied', null, []]);
    expect(recs).toContainEqual(['Bind', 'SELECT 2', 'skipped', null, []]);
    expect(recs.filter((x) => x[2] === 'error')).toEqual([]);
  });

  it('a denied simple Query: one denied record, no error record for its sentinel', () => {
    const { h, records } = logged();
    const r = h.client(Q('DELETE FROM t'));
    expect(records()).toEqual([expect.objectContaining({ message_type: 'Query', status: 'denied' })]);
    const down = h.server(syntaxErrorFor(r.up[0]!), pg.ready());
    expect(fields(down.down[0]!).C).toBe('42501');
    expect(records()).toHaveLength(1);
  });

  it('records the error of a Query the server rejects, and a denied Parse; nothing of the sentinel', () => {
    const { h, records } = logged();
    h.client(Q('SELECT * FROM missing'));
    h.server(pg.error('42P01', 'relation "missing" does not exist'), pg.ready());
    const r = h.client(P('DELETE FROM t', 's1'), S());
    h.server(syntaxErrorFor(r.up[0]!), pg.ready());
    expect(records().map((x) => [x.message_type, x.status, x.sqlstate])).toEqual([
      ['Query', 'error', '42P01'],
      ['Parse', 'denied', null],
    ]);
  });

  it('COPY FROM STDIN by Query: the COPY tag’s rows', () => {
    const { h, records } = logged();
    h.client(Q('COPY t FROM STDIN'));
    h.server(pg.copyIn());
    h.client(encodeCopyData(Buffer.from('1\n2\n')), encodeCopyDone());
    expect(records()).toEqual([]);
    h.server(pg.complete('COPY 2'), pg.ready());
    expect(records()).toEqual([expect.objectContaining({ status: 'ok', command_tags: ['COPY 2'], rows: 2 })]);
  });

  it('COPY TO STDOUT by Execute: CopyData passes, the Bind’s record gets COPY n', () => {
    const { h, records } = logged();
    h.client(P('COPY t TO STDOUT'), B(), E(), S());
    h.server(pg.parseComplete(), pg.bindComplete(), pg.copyOut(), pg.copyData('1\n'), pg.copyDone());
    h.server(pg.complete('COPY 1'), pg.ready());
    expect(records()).toEqual([
      expect.objectContaining({ message_type: 'Bind', status: 'ok', command_tags: ['COPY 1'], rows: 1 }),
    ]);
  });

  it('a portal run in parts (PortalSuspended) is one record, ended by its CommandComplete', () => {
    const { h, records } = logged();
    h.client(P('SELECT x FROM t'), B('', 'c1'), E('c1', 1), S());
    h.server(pg.parseComplete(), pg.bindComplete(), pg.dataRow('1'), pg.portalSuspended(), pg.ready('T'));
    expect(records()).toEqual([]); // the portal can run on
    h.client(E('c1', 0), S());
    h.server(pg.dataRow('2'), pg.complete('SELECT 1'), pg.ready('T'));
    expect(records()).toEqual([
      expect.objectContaining({ message_type: 'Bind', status: 'ok', command_tags: ['SELECT 1'] }),
    ]);
  });

  it('a Bind never executed ends with its cycle; a failed Bind records its error', () => {
    const { h, records } = logged();
    h.client(P('SELECT 1'), B(), S());
    h.server(pg.parseComplete(), pg.bindComplete(), pg.ready());
    h.client(P('SELECT $1::int'), B(), E(), S());
    h.server(pg.parseComplete(), pg.error('08P01', 'bind message supplies 0 parameters'), pg.ready());
    expect(records().map((x) => [x.status, x.sqlstate, x.command_tags])).toEqual([
      ['ok', null, []],
      ['error', '08P01', []],
    ]);
  });

  it('leaves statements open at session end to the log (written incomplete)', () => {
    const { h, log, records } = logged();
    h.client(Q('SELECT pg_sleep(10)'));
    log.sessionEnded(h.core.conn.id, 'client_closed');
    expect(records()).toEqual([expect.objectContaining({ status: 'incomplete', duration_ms: null })]);
  });

  it('tracks nothing when the statement log is disabled', () => {
    const { h, records } = logged(false);
    expect(h.core.requests.pipeline.tracker).toBeNull();
    h.client(Q('SELECT 1'));
    h.server(pg.complete('SELECT 1'), pg.ready());
    expect(records()).toEqual([]);
  });
});
