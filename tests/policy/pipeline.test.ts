/**
 * Denials inside pipelines: postgres.js (which pipelines concurrent queries on one connection,
 * each with its own Sync) and raw extended-protocol pipelines built with the gateway's encoders,
 * where the policy error must appear exactly in the denied message's position.
 * https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-PIPELINING
 */
import { postgresJs } from '../helpers/pg-clients';
import { encodeBind, encodeExecute, encodeParse, encodeSync } from '../../gateway/src/protocol';
import { snapshot, withDirect, policySuite } from './policy-helpers';
import { RawClient, errorOf, statusOf, type BackendMsg } from './raw-client';

const DB = 'pgward_policy_pipeline';

const suite = policySuite(DB);

const types = (ms: BackendMsg[]): string => ms.map((m) => m.type).join('');
const count = async (where = 'true'): Promise<number> =>
  withDirect(DB, async (c) =>
    Number((await c.query(`SELECT count(*) AS n FROM t WHERE ${where}`)).rows[0].n),
  );

async function raw(user = 'app'): Promise<RawClient> {
  const { client, startup } = await RawClient.connect(suite.gw.host, suite.gw.port, { user, database: DB });
  expect(startup.at(-1)?.type).toBe('Z');
  return client;
}

describe('postgres.js pipelines', () => {
  test('five concurrent queries on one connection, the third denied: only it fails, the others complete', async () => {
    const sql = postgresJs({ host: suite.gw.host, port: suite.gw.port, user: 'app', database: DB });
    try {
      await sql`SELECT 1`; // connected: what follows is written back to back on the one connection
      const results = await Promise.allSettled([
        sql`INSERT INTO t VALUES (${601}, ${1})`,
        sql`SELECT count(*)::int AS n FROM t`,
        sql.unsafe('DELETE FROM t'),
        sql`UPDATE t SET v = ${61} WHERE id = ${601}`,
        sql`SELECT v FROM t WHERE id = ${601}`,
      ]);
      expect(results.map((r) => r.status)).toEqual([
        'fulfilled',
        'fulfilled',
        'rejected',
        'fulfilled',
        'fulfilled',
      ]);
      const err = (results[2] as PromiseRejectedResult).reason as {
        code: string;
        message: string;
        detail: string;
      };
      expect(err.code).toBe('42501');
      expect(err.message).toBe('permission denied by policy: DELETE without WHERE on t');
      expect(err.detail).toMatch(/Decision /);
      expect((results[4] as unknown as PromiseFulfilledResult<Array<{ v: number }>>).value[0]?.v).toBe(61);
      expect(await count()).toBe(11);
    } finally {
      await sql.end();
      await withDirect(DB, (c) => c.query('DELETE FROM t WHERE id = 601'));
    }
  });

  test('a denied query in a sql.begin() transaction aborts it; nothing of it remains', async () => {
    const sql = postgresJs({ host: suite.gw.host, port: suite.gw.port, user: 'app', database: DB });
    const before = await snapshot(DB);
    try {
      const err = (await sql
        .begin((tx) => [
          tx`INSERT INTO t VALUES (${602}, ${2})`,
          tx`UPDATE t SET v = 0 WHERE id = ${1}`,
          tx.unsafe('DROP TABLE t'),
          tx`INSERT INTO t VALUES (${603}, ${3})`,
        ])
        .then(
          () => null,
          (e: unknown) => e,
        )) as { code: string; message: string } | null;
      expect(err).not.toBeNull();
      expect(err?.code).toBe('42501');
      expect(err?.message).toBe('permission denied by policy: DROP TABLE t is reserved for admins');
      // The connection is still usable, outside any transaction.
      expect(await sql`SELECT count(*)::int AS n FROM t`).toEqual([{ n: 10 }]);
    } finally {
      await sql.end();
    }
    expect(await snapshot(DB)).toEqual(before);
  });
});

describe('raw extended-protocol pipeline', () => {
  test('message 3 of 5 denied: responses to 1–2, the policy error in position 3, nothing for 4–5, one ReadyForQuery I; 1 rolled back', async () => {
    const c = await raw();
    try {
      const before = await snapshot(DB);
      c.send(
        encodeParse('ins', 'INSERT INTO t VALUES (1001, 1)'), // 1 → ParseComplete
        encodeBind('', 'ins', []), // 2 → BindComplete
        encodeExecute(''), //          → CommandComplete INSERT 0 1
        encodeParse('del', 'DELETE FROM t'), // 3 → denied: ErrorResponse
        encodeBind('', 'del', []), // 4 → skipped
        encodeExecute(''),
        encodeParse('', 'SELECT 1'), // 5 → skipped
        encodeBind('', '', []),
        encodeExecute(''),
        encodeSync(),
      );
      const ms = await c.readUntilReady();
      expect(types(ms)).toBe('12CEZ');
      expect(ms[2]!.frame.toString('latin1')).toContain('INSERT 0 1');
      const e = errorOf(ms[3]!);
      expect(e).toMatchObject({
        severity: 'ERROR',
        code: '42501',
        message: 'permission denied by policy: DELETE without WHERE on t',
      });
      expect(e.detail).toMatch(/Decision /);
      expect(statusOf(ms[4]!)).toBe('I');
      expect(await c.quietFor(200)).toBe(0);
      expect(await count('id = 1001')).toBe(0); // the implicit transaction of the pipeline was rolled back
      expect(await snapshot(DB)).toEqual(before);

      // The session goes on; 'ins' exists (its Parse succeeded), 'del' does not.
      c.send(encodeBind('', 'del', []), encodeExecute(''), encodeSync());
      const again = await c.readUntilReady();
      expect(types(again)).toBe('EZ');
      expect(await count()).toBe(10);
    } finally {
      c.close();
    }
  });

  test('a denied unnamed Parse + Bind/Execute of the unnamed statement does not run the earlier unnamed statement', async () => {
    const c = await raw();
    try {
      c.send(encodeParse('', 'SELECT 4242'), encodeSync());
      expect(types(await c.readUntilReady())).toBe('1Z');

      c.send(encodeParse('', 'DELETE FROM t'), encodeBind('', '', []), encodeExecute(''), encodeSync());
      const ms = await c.readUntilReady();
      expect(types(ms)).toBe('EZ'); // no BindComplete, no DataRow of a stale SELECT 4242, no CommandComplete
      expect(errorOf(ms[0]!)).toMatchObject({
        code: '42501',
        message: 'permission denied by policy: DELETE without WHERE on t',
      });

      // In a later pipeline the unnamed statement is gone (the server dropped it with the failed Parse).
      c.send(encodeBind('', '', []), encodeExecute(''), encodeSync());
      const later = await c.readUntilReady();
      expect(types(later)).toBe('EZ');
      // pgward knows the unnamed statement is gone: the client gets the server's own error.
      const e = errorOf(later[0]!);
      expect(e).toMatchObject({ code: '26000', message: 'unnamed prepared statement does not exist' });
      expect(await count()).toBe(10);
    } finally {
      c.close();
    }
  });

  test('the stale unnamed statement would write: it never runs after a denied unnamed Parse', async () => {
    const c = await raw();
    try {
      c.send(encodeParse('', 'INSERT INTO t VALUES (2002, 0)'), encodeSync());
      expect(types(await c.readUntilReady())).toBe('1Z');
      c.send(encodeParse('', 'UPDATE t SET v = 0'), encodeSync());
      const denied = await c.readUntilReady();
      expect(types(denied)).toBe('EZ');
      expect(errorOf(denied[0]!).message).toBe('permission denied by policy: UPDATE without WHERE on t');
      c.send(encodeBind('', '', []), encodeExecute(''), encodeSync());
      const ms = await c.readUntilReady();
      expect(types(ms)).toBe('EZ');
      expect(errorOf(ms[0]!)).toMatchObject({
        code: '26000',
        message: 'unnamed prepared statement does not exist',
      });
      expect(await count('id = 2002')).toBe(0);
      expect(await count('v = 0')).toBe(0);
    } finally {
      c.close();
    }
  });
});
