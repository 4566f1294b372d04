/**
 * SessionCore scenarios for standard_conforming_strings = off (issue 10): a change pgward judged
 * (SET, set_config, the startup `options`) or a role/database default reported at startup is the
 * session's new lexical state; SQL text without a backslash reads the same under it and is
 * forwarded; text with one is refused (PGWARD_ERR_SQL_LEXICAL_STRING_SYNTAX) and the session goes
 * on. A change no judged statement made still ends the session (the tripwire).
 * Server answers are those PostgreSQL 15 gives (a SET reports the changed GUC_REPORT setting in
 * ParameterStatus just before the cycle's ReadyForQuery).
 */
import {
  encodeBind,
  encodeExecute,
  encodeParse,
  encodeQuery,
  encodeStartupMessage,
  encodeSync,
  PROTOCOL_3_0,
} from '../protocol';
import { initSqlParser } from '../sql';
import { Harness, fields, pg, syntaxErrorFor, types, type Msg } from './core-harness.test-helper';

const Q = (sql: string): Buffer => encodeQuery(sql);
const STRING_SYNTAX = 'PGWARD_ERR_SQL_LEXICAL_STRING_SYNTAX';
/** The smuggling text of issue 10: one SELECT to a standard reader, a SELECT and a DROP otherwise. */
const SMUGGLE = "SELECT '\\' || ' ; DROP TABLE t; SELECT ' -- '";

beforeAll(async () => {
  await initSqlParser();
});

const codes = (h: Harness): Array<string | null> =>
  h.decisions.filter((d) => d.input.message.type !== 'StartupMessage').map((d) => d.decision.error_code);

function ready(reports: Array<[string, string]> = [['standard_conforming_strings', 'on']]): Harness {
  const h = new Harness();
  h.login('app', 1, Buffer.from([1, 2, 3, 4]), [['client_encoding', 'UTF8'], ...reports]);
  return h;
}

/** A judged SET standard_conforming_strings, answered as PostgreSQL answers it. */
function setScs(h: Harness, sql: string, value: 'on' | 'off'): Msg[] {
  const r = h.client(Q(sql));
  expect(types(r.up)).toBe('Q');
  return h.server(pg.complete('SET'), pg.param('standard_conforming_strings', value), pg.ready()).down;
}

/** A Query the server runs: forwarded as sent, answered with one row. */
function forwarded(h: Harness, sql: string): void {
  const r = h.client(Q(sql));
  expect(types(r.up)).toBe('Q');
  expect(r.up[0]!.body.toString('utf8', 0, r.up[0]!.body.length - 1)).toBe(sql);
  const down = h.server(pg.rowDescription(), pg.dataRow('1'), pg.complete('SELECT 1'), pg.ready()).down;
  expect(types(down)).toBe('TDCZ');
}

/** A Query pgward refuses: its sentinel goes up, the client gets the pgward error, the session lives. */
function refused(h: Harness, sql: string, code: string): void {
  const r = h.client(Q(sql));
  expect(types(r.up)).toBe('Q');
  expect(r.up[0]!.body.toString('utf8')).not.toContain('DROP');
  const down = h.server(syntaxErrorFor(r.up[0]!), pg.ready()).down;
  expect(types(down)).toBe('EZ');
  expect(fields(down[0]!)).toMatchObject({ S: 'ERROR', C: '0A000' });
  expect(codes(h).at(-1)).toBe(code);
  expect(h.core.phase).toBe('ready');
}

describe('standard_conforming_strings off, judged', () => {
  it('a SET pgward judged: plain text forwarded, backslash text refused, SET back on allows it again', () => {
    const h = ready();
    const down = setScs(h, 'SET standard_conforming_strings = off', 'off');
    expect(types(down)).toBe('CSZ');
    expect(h.diverged).toEqual([]);
    expect(h.core.requests.lexical.standardConformingStrings).toBe(false);
    expect(h.core.conn.server).toMatchObject({ standard_conforming_strings: false });

    forwarded(h, "SELECT 'it''s plain' AS y");
    refused(h, SMUGGLE, STRING_SYNTAX);
    refused(h, "SELECT E'a\\\\b'", STRING_SYNTAX);
    forwarded(h, 'SELECT 2');

    expect(types(setScs(h, 'SET standard_conforming_strings TO on', 'on'))).toBe('CSZ');
    expect(h.core.requests.lexical.standardConformingStrings).toBe(true);
    forwarded(h, "SELECT 'a\\b'");
    expect(h.engine.inputs.at(-1)!.message.sql).toBe("SELECT 'a\\b'");
    expect(h.diverged).toEqual([]);
    expect(h.errors.filter((e) => e.startsWith('PGWARD_ERR_SERVER_STATE'))).toEqual([]);
  });

  it('set_config and RESET are judged changes too', () => {
    const h = ready();
    h.client(Q("SELECT set_config('standard_conforming_strings', 'off', false)"));
    h.server(
      pg.rowDescription(),
      pg.dataRow('off'),
      pg.complete('SELECT 1'),
      pg.param('standard_conforming_strings', 'off'),
      pg.ready(),
    );
    expect(h.diverged).toEqual([]);
    refused(h, SMUGGLE, STRING_SYNTAX);
    setScs(h, 'RESET standard_conforming_strings', 'on');
    forwarded(h, "SELECT 'a\\b'");
    expect(h.diverged).toEqual([]);
  });

  it('a Parse with a backslash is refused the same way; one without is forwarded', () => {
    const h = ready();
    setScs(h, 'SET standard_conforming_strings = off', 'off');
    const r = h.client(encodeParse('', SMUGGLE), encodeBind('', '', []), encodeExecute(''), encodeSync());
    // The Bind of the refused statement never runs: the server skips to Sync after the sentinel's error.
    expect(codes(h).slice(0, 2)).toEqual([null, STRING_SYNTAX]);
    expect(r.up[0]!.body.toString('utf8')).not.toContain('DROP');
    const down = h.server(syntaxErrorFor(r.up[0]!), pg.ready()).down;
    expect(types(down)).toBe('EZ');
    expect(fields(down[0]!)).toMatchObject({ C: '0A000' });
    const ok = h.client(
      encodeParse('', "SELECT 'x'"),
      encodeBind('', '', []),
      encodeExecute(''),
      encodeSync(),
    );
    expect(types(ok.up)).toBe('PBES');
    expect(h.core.phase).toBe('ready');
  });

  it('backslash text pipelined behind the SET is refused until the server confirms it', () => {
    const h = ready();
    const r = h.client(Q('SET standard_conforming_strings = off'), Q(SMUGGLE));
    // held behind the unanswered SET, then read under what the server reported
    expect(types(r.up)).toBe('Q');
    const next = h.server(pg.complete('SET'), pg.param('standard_conforming_strings', 'off'), pg.ready());
    expect(types(next.up)).toBe('Q');
    expect(next.up[0]!.body.toString('utf8')).not.toContain('DROP');
    expect(codes(h)).toEqual([null, STRING_SYNTAX]);
    expect(h.diverged).toEqual([]);
  });

  it('a role or database default reported at startup is the session’s state', () => {
    const h = ready([['standard_conforming_strings', 'off']]);
    expect(h.core.phase).toBe('ready');
    expect(h.diverged).toEqual([]);
    forwarded(h, 'SELECT 1');
    refused(h, SMUGGLE, STRING_SYNTAX);
  });

  it('options=-c standard_conforming_strings=off at startup is accepted; backslash text is refused', () => {
    const h = new Harness();
    const startup = { user: 'app', database: 'app', options: '-c standard_conforming_strings=off' };
    const r = h.client(encodeStartupMessage(PROTOCOL_3_0, new Map(Object.entries(startup))));
    expect(r.actions.some((a) => a.kind === 'connectUpstream')).toBe(true);
    expect(h.core.requests.lexical.standardConformingStrings).toBe(false);
    h.core.upstreamConnected({ tls: false, channelBindingHonoured: false });
    h.take();
    h.server(
      pg.authOk(),
      pg.param('client_encoding', 'UTF8'),
      pg.param('standard_conforming_strings', 'off'),
      pg.keyData(1, Buffer.from([1, 2, 3, 4])),
      pg.ready(),
    );
    expect(h.core.phase).toBe('ready');
    forwarded(h, "SELECT 'plain'");
    refused(h, SMUGGLE, STRING_SYNTAX);
    expect(h.diverged).toEqual([]);
  });
});

describe('standard_conforming_strings changed by nothing pgward judged', () => {
  // A function that calls set_config inside: the report is the only sign; the session ends.
  it.each([
    ['on', 'off'],
    ['off', 'on'],
  ] as const)('from %s to %s still ends the session', (before, after) => {
    const h = ready([['standard_conforming_strings', before]]);
    h.client(Q('SELECT f()'));
    const down = h.server(
      pg.complete('SELECT 1'),
      pg.param('standard_conforming_strings', after),
      pg.ready(),
    ).down;
    expect(down.map((m) => fields(m))).toMatchObject([{ S: 'FATAL', C: '42501' }]);
    expect([h.errors, h.closed]).toEqual([['PGWARD_ERR_SERVER_STATE_LEXICAL'], ['server_state_diverged']]);
    expect(h.diverged[0]!.preceding!.input.message.sql).toBe('SELECT f()');
  });
});
