/**
 * Issue 9: prepared statement names as the server holds them. A named Parse the server rejects
 * creates nothing (the same name can be prepared again right away, as node-postgres does after an
 * error and in pipelining); a Parse of a name that exists (42P05) leaves the old statement in place;
 * a Parse of an empty query creates a statement whose Execute answers EmptyQueryResponse. Each case
 * is run directly first, then through pgward with the allow-all bundle: same answers, and the Bind
 * is judged against the statement the server really executes.
 */
import { Client } from 'pg';
import {
  encodeBind,
  encodeClose,
  encodeDescribe,
  encodeExecute,
  encodeParse,
  encodeSync,
} from '../../gateway/src/protocol';
import { DIRECT, bindExec, judgedBinds, sessionSuite, transcripts, type Target } from './session-helpers';

const suite = sessionSuite('pgward_session_stmts', { allowAll: true, decisionLog: true });

const user = (): { user: string; database: string } => ({ user: 'postgres', database: suite.db });

/** Runs `batches` directly and through pgward; returns both transcripts (direct first). */
async function both(batches: Buffer[][]): Promise<[string[][], string[][]]> {
  const direct = await transcripts(DIRECT, user(), batches);
  const proxied = await transcripts(suite.through, user(), batches);
  return [direct, proxied];
}

describe('a named Parse the server rejects creates nothing', () => {
  test('rejected (syntax error), then the same name prepared again and executed in the next pipeline', async () => {
    const batches = [
      [encodeParse('s_rejected', 'SELEC 1'), encodeSync()],
      [encodeParse('s_rejected', 'SELECT 41 + 1'), ...bindExec('s_rejected')],
    ];
    const [direct, proxied] = await both(batches);
    expect(direct).toEqual([
      ['E 42601', 'Z I'],
      ['1', '2', 'D 42', 'C SELECT 1', 'Z I'],
    ]);
    expect(proxied).toEqual(direct);
  });

  test('rejected and re-prepared within one pipeline (two Syncs sent back to back)', async () => {
    const batches = [
      [
        encodeParse('s_piped', 'SELECT * FROM no_such_table'),
        encodeSync(),
        encodeParse('s_piped', 'SELECT 7'),
        ...bindExec('s_piped'),
      ],
    ];
    const [direct, proxied] = await both(batches);
    expect(direct).toEqual([['E 42P01', 'Z I', '1', '2', 'D 7', 'C SELECT 1', 'Z I']]);
    expect(proxied).toEqual(direct);
  });

  test('node-postgres: a named query that fails, then the same name with valid SQL', async () => {
    const run = async (t: Target): Promise<unknown[]> => {
      const c = new Client({ host: t.host, port: t.port, user: 'postgres', database: suite.db });
      await c.connect();
      try {
        const first = await c.query({ name: 'pg_named', text: 'SELEC $1::int', values: [1] }).then(
          () => 'ok',
          (e: { code?: string }) => e.code,
        );
        const second = await c.query({ name: 'pg_named', text: 'SELECT $1::int AS n', values: [5] }).then(
          (r) => r.rows,
          (e: { code?: string; message?: string }) => `${e.code}: ${e.message}`,
        );
        const third = await c.query({ name: 'pg_named', text: 'SELECT $1::int AS n', values: [6] }).then(
          (r) => r.rows,
          (e: { code?: string; message?: string }) => `${e.code}: ${e.message}`,
        );
        return [first, second, third];
      } finally {
        await c.end();
      }
    };
    const direct = await run(DIRECT);
    expect(direct).toEqual(['42601', [{ n: 5 }], [{ n: 6 }]]);
    expect(await run(suite.through)).toEqual(direct);
  });
});

describe('a name prepared twice', () => {
  test('the second Parse fails with 42P05 and the first statement stays: the Bind runs it and is judged as it', async () => {
    const before = suite.gw.logs.length;
    const batches = [
      [encodeParse('s_twice', 'SELECT 1 AS first'), encodeSync()],
      [encodeParse('s_twice', 'UPDATE t SET v = v + 100 WHERE id = 1'), encodeSync()],
      bindExec('s_twice'),
    ];
    const [direct, proxied] = await both(batches);
    expect(direct).toEqual([
      ['1', 'Z I'],
      ['E 42P05', 'Z I'],
      ['2', 'D 1', 'C SELECT 1', 'Z I'],
    ]);
    expect(proxied).toEqual(direct);
    // The one Bind through pgward (the direct run writes no decision log) was judged as SELECT 1.
    expect(await judgedBinds(suite.gw, before, 1)).toEqual(['SELECT 1 AS first']);
  });
});

describe('a Parse of an empty query', () => {
  test('named: ParseComplete, then Bind/Execute answer EmptyQueryResponse, as directly', async () => {
    const batches = [
      [encodeParse('s_empty', ''), encodeSync()],
      bindExec('s_empty'),
      [
        encodeDescribe('S', 's_empty'),
        encodeBind('', 's_empty', []),
        encodeExecute(''),
        encodeClose('S', 's_empty'),
        encodeSync(),
      ],
    ];
    const [direct, proxied] = await both(batches);
    expect(direct).toEqual([
      ['1', 'Z I'],
      ['2', 'I', 'Z I'],
      ['t', 'n', '2', 'I', '3', 'Z I'],
    ]);
    expect(proxied).toEqual(direct);
  });

  test('unnamed, with Bind/Execute in the same pipeline (what statement caches send)', async () => {
    const batches = [[encodeParse('', '   '), ...bindExec('')]];
    const [direct, proxied] = await both(batches);
    expect(direct).toEqual([['1', '2', 'I', 'Z I']]);
    expect(proxied).toEqual(direct);
  });
});

describe('a Bind pipelined behind an unanswered cycle that changes its statement', () => {
  // Until the server answers the Close, s may still be the old statement or the new one: the Bind
  // waits for the answers and is judged against what the server then holds (it was denied 26000).
  /** `name` prepared as SELECT 1; then Close, Parse of `sql` under the name and Bind, all at once. */
  const swap = (name: string, sql: string): Buffer[][] => [
    [encodeParse(name, 'SELECT 1'), encodeSync()],
    [encodeClose('S', name), encodeSync(), encodeParse(name, sql), encodeSync(), ...bindExec(name)],
  ];

  test('Close, Parse of the same name, Bind: the Bind runs the new statement, as directly', async () => {
    const since = suite.gw.logs.length;
    const batches = swap('s_swap', 'SELECT 2');
    const [direct, proxied] = await both(batches);
    expect(direct).toEqual([
      ['1', 'Z I'],
      ['3', 'Z I', '1', 'Z I', '2', 'D 2', 'C SELECT 1', 'Z I'],
    ]);
    expect(proxied).toEqual(direct);
    expect(await judgedBinds(suite.gw, since, 1, 's_swap')).toEqual(['SELECT 2']);
  });

  test('the new Parse fails: the Bind meets the server’s own 26000, as directly', async () => {
    const batches = swap('s_swap_bad', 'SELEC 2');
    const [direct, proxied] = await both(batches);
    expect(direct).toEqual([
      ['1', 'Z I'],
      ['3', 'Z I', 'E 42601', 'Z I', 'E 26000', 'Z I'],
    ]);
    expect(proxied).toEqual(direct);
  });
});
