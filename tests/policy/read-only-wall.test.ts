/**
 * The second wall for read-only principals: the shipped startup decision pins
 * default_transaction_read_only=on on the upstream session, so even a write the policy cannot see
 * (inside a function body) is refused by PostgreSQL itself; the client cannot lift it in its
 * startup packet nor later by SQL.
 */
import { pgClient, postgresJs } from '../helpers/pg-clients';
import {
  connectAs,
  expectPolicyError,
  rejection,
  snapshot,
  withDirect,
  type PgErrorLike,
  policySuite,
} from './policy-helpers';

const DB = 'pgward_policy_readonly';

const suite = policySuite(DB);

test('control: directly (no pgward) readonly can write through public.sneaky() — privileges do not stop it', async () => {
  const c = await pgClient({ host: '127.0.0.1', port: 5432, user: 'readonly', database: DB });
  try {
    await c.query('BEGIN');
    await c.query('SELECT public.sneaky()');
    expect((await c.query('SELECT count(*)::int AS n FROM t')).rows[0].n).toBe(11);
    await c.query('ROLLBACK');
  } finally {
    await c.end();
  }
});

describe.each(['readonly', 'analyst'])('%s through pgward', (user) => {
  test('the policy allows SELECT public.sneaky(); the server refuses the INSERT in its body with 25006', async () => {
    const before = await snapshot(DB);
    const c = await connectAs(suite.gw, user, DB);
    try {
      expect((await c.client.query('SHOW default_transaction_read_only')).rows).toEqual([
        { default_transaction_read_only: 'on' },
      ]);
      for (const q of [
        'SELECT public.sneaky()',
        { text: 'SELECT public.sneaky() WHERE $1::int = 1', values: [1] },
      ]) {
        const err = await rejection(c.client.query(q));
        expect(err.code).toBe('25006');
        expect(err.message).toBe('cannot execute INSERT in a read-only transaction');
      }
      await c.client.query('BEGIN');
      expect((await rejection(c.client.query('SELECT public.sneaky()'))).code).toBe('25006');
      await c.client.query('ROLLBACK');
      expect((await c.client.query('SELECT count(*)::int AS n FROM t')).rows[0].n).toBe(10);
    } finally {
      await c.end();
    }
    expect(await snapshot(DB)).toEqual(before);
  });

  test('turning read-only mode off by SQL is denied by policy', async () => {
    const c = await connectAs(suite.gw, user, DB);
    try {
      for (const [sql, reason] of [
        [
          'SET default_transaction_read_only = off',
          `read-only user ${user} cannot set default_transaction_read_only to off`,
        ],
        [
          "SELECT set_config('default_transaction_read_only', 'off', false)",
          `read-only user ${user} cannot set default_transaction_read_only to off`,
        ],
        ['BEGIN READ WRITE', `read-only user ${user} cannot start a READ WRITE transaction`],
        ['START TRANSACTION READ WRITE', `read-only user ${user} cannot start a READ WRITE transaction`],
        [
          'SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE',
          `read-only user ${user} cannot set default_transaction_read_only`,
        ],
        ['RESET default_transaction_read_only', `read-only user ${user} cannot`],
        ['RESET ALL', `read-only user ${user} cannot RESET all`],
      ] as const) {
        expectPolicyError(await rejection(c.client.query(sql)), reason);
        expect(await c.status()).toBe('I');
      }
      // The setting's name and value as parameters: the policy cannot see them, so it denies.
      const hidden = await rejection(
        c.client.query({
          text: 'SELECT set_config($1, $2, false)',
          values: ['default_transaction_read_only', 'off'],
        }),
      );
      expect(hidden.code).toBe('42501');
      expect(hidden.message).toMatch(/^permission denied by policy: /);
      // Inside a block: SET TRANSACTION READ WRITE fails the block.
      await c.client.query('BEGIN');
      expectPolicyError(
        await rejection(c.client.query('SET TRANSACTION READ WRITE')),
        `read-only user ${user} cannot`,
      );
      expect(await c.status()).toBe('E');
      await c.client.query('ROLLBACK');
      expect((await c.client.query('SHOW default_transaction_read_only')).rows).toEqual([
        { default_transaction_read_only: 'on' },
      ]);
      expect((await c.client.query('SHOW transaction_read_only')).rows).toEqual([
        { transaction_read_only: 'on' },
      ]);
    } finally {
      await c.end();
    }
  });

  // PostgreSQL 18 writes planner statistics with these even in a READ ONLY transaction (checked on
  // 18.7), so the server's wall does not stop them: the policy must. Here (15) they do not exist:
  // the policy error shows pgward refused them before the server could say so.
  test('PostgreSQL 16–18 functions with side effects are denied by policy', async () => {
    const c = await connectAs(suite.gw, user, DB);
    try {
      for (const sql of [
        "SELECT pg_clear_relation_stats('public', 't')",
        "SELECT pg_restore_relation_stats('schemaname', 'public', 'relname', 't', 'relpages', 99)",
        "SELECT pg_clear_attribute_stats('public', 't', 'id', false)",
        "SELECT pg_restore_attribute_stats('schemaname', 'public', 'relname', 't', 'attname', 'id')",
        'SELECT pg_log_standby_snapshot()',
        'SELECT pg_sync_replication_slots()',
      ]) {
        expectPolicyError(await rejection(c.client.query(sql)), `read-only user ${user} cannot run SELECT`);
      }
    } finally {
      await c.end();
    }
  });

  test('the startup packet cannot lift it: options -c … / a direct parameter are denied at startup', async () => {
    const viaOptions = (await rejection(
      pgClient({
        host: suite.gw.host,
        port: suite.gw.port,
        user,
        database: DB,
        config: { options: '-c default_transaction_read_only=off' },
      }),
    )) as PgErrorLike;
    expect(viaOptions).toMatchObject({
      severity: 'FATAL',
      code: '28000',
      message: `permission denied by policy: read-only user ${user} cannot set default_transaction_read_only at startup`,
    });
    const viaOptionsLong = (await rejection(
      pgClient({
        host: suite.gw.host,
        port: suite.gw.port,
        user,
        database: DB,
        config: { options: '--default-transaction-read-only=0' },
      }),
    )) as PgErrorLike;
    expect(viaOptionsLong).toMatchObject({ severity: 'FATAL', code: '28000' });

    const sql = postgresJs({
      host: suite.gw.host,
      port: suite.gw.port,
      user,
      database: DB,
      options: {
        connection: { application_name: 'pgward-test', default_transaction_read_only: 'off' } as never,
      },
    });
    try {
      const err = (await rejection(sql`SELECT 1`)) as PgErrorLike;
      expect(err).toMatchObject({
        code: '28000',
        message: expect.stringContaining('default_transaction_read_only') as unknown as string,
      });
    } finally {
      await sql.end();
    }
    const n = await withDirect(DB, (d) => d.query('SELECT count(*)::int AS n FROM t'));
    expect(n.rows[0].n).toBe(10);
  });
});

test('an ordinary user is not read-only: the same function writes (the wall is only for read-only principals)', async () => {
  const c = await connectAs(suite.gw, 'app', DB);
  try {
    expect((await c.client.query('SHOW default_transaction_read_only')).rows).toEqual([
      { default_transaction_read_only: 'off' },
    ]);
    await c.client.query('BEGIN');
    await c.client.query('SELECT public.sneaky()');
    expect((await c.client.query('SELECT count(*)::int AS n FROM t')).rows[0].n).toBe(11);
    await c.client.query('ROLLBACK');
  } finally {
    await c.end();
  }
});
