/**
 * postgres.js through pgward with the shipped policy. postgres.js pipelines by default (every query
 * on a connection is written without waiting for the previous answer) and prepares named
 * statements, so this is the extended protocol under real pipelining: each query must get its own
 * result or error, exactly as directly.
 */
import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type postgres from 'postgres';
import { startGateway, stopAllGateways, type RunningGateway } from '../helpers/gateway';
import { postgresJs } from '../helpers/pg-clients';
import { DIRECT, dropDatabase, errCode, recreateDatabase, uniqueDbName } from './proxy-helpers';

const DB = uniqueDbName('pgward_proxy_pgjs');

jest.setTimeout(60_000);

let gw: RunningGateway;
const opened: postgres.Sql[] = [];
function viaGateway(options: postgres.Options<Record<string, never>> = {}, max = 1): postgres.Sql {
  const sql = postgresJs({ host: gw.host, port: gw.port, user: DIRECT.user, database: DB, max, options });
  opened.push(sql);
  return sql;
}
function direct(options: postgres.Options<Record<string, never>> = {}): postgres.Sql {
  const sql = postgresJs({ ...DIRECT, database: DB, options });
  opened.push(sql);
  return sql;
}

beforeAll(async () => {
  await recreateDatabase(DB);
  gw = await startGateway();
  const sql = direct();
  await sql.unsafe(`
    CREATE TABLE kv (id int PRIMARY KEY, v text NOT NULL);
    INSERT INTO kv SELECT g, 'v' || g FROM generate_series(1, 100) g;
    CREATE TABLE ledger (id serial PRIMARY KEY, amount int NOT NULL CHECK (amount > 0));
    CREATE TABLE copy_t (id int, h text);
  `);
  await sql.end();
});

afterAll(async () => {
  await Promise.all(opened.map((s) => s.end({ timeout: 1 })));
  await stopAllGateways();
  await dropDatabase(DB);
});

type Outcome =
  | {
      rows: unknown[];
      command: string;
      count: number;
      columns: Array<{ name: string; type: number }> | undefined;
    }
  | { error: Record<string, unknown> };

function outcome(r: PromiseSettledResult<postgres.RowList<postgres.Row[]>>): Outcome {
  if (r.status === 'fulfilled') {
    const v = r.value;
    return {
      rows: [...v],
      command: v.command,
      count: v.count,
      columns: v.columns?.map((c) => ({ name: c.name, type: c.type })),
    };
  }
  const e = r.reason as Record<string, unknown>;
  const keep = [
    'name',
    'message',
    'code',
    'severity',
    'detail',
    'hint',
    'position',
    'table_name',
    'constraint_name',
    'routine',
  ];
  return { error: Object.fromEntries(keep.map((k) => [k, e[k]])) };
}

/** 50 queries written at once on one connection; three of them fail, each differently. */
function fifty(sql: postgres.Sql): Array<Promise<postgres.RowList<postgres.Row[]>>> {
  return Array.from({ length: 50 }, (_, i) => {
    if (i === 10) return sql`SELECT 1 / ${0}::int AS boom`;
    if (i === 25) return sql`INSERT INTO kv (id, v) VALUES (${1}, ${'dup'})`;
    if (i === 26) return sql`SELECT no_such_column FROM kv`;
    if (i % 7 === 0) return sql`SELECT v FROM kv WHERE id = ${i}`;
    return sql`SELECT ${i}::int AS i, ${'s' + i}::text AS s, ${[i, i + 1]}::int[] AS a`;
  });
}

test('50 pipelined queries on one connection, failures in the middle, each get their own answer', async () => {
  const d = direct();
  const expected = (await Promise.allSettled(fifty(d))).map(outcome);
  const codes = expected.flatMap((o) => ('error' in o ? [o.error.code] : []));
  expect(codes).toEqual(['22012', '23505', '42703']);

  const sql = viaGateway();
  const got = (await Promise.allSettled(fifty(sql))).map(outcome);
  expect(got).toEqual(expected);
  // The same connection goes on.
  expect([...(await sql`SELECT 'still here' AS s`)]).toEqual([{ s: 'still here' }]);
});

test('a statement the policy denies in the middle of a pipeline fails alone, in position', async () => {
  const sql = viaGateway();
  const ps = Array.from({ length: 20 }, (_, i) =>
    i === 7 ? sql`DELETE FROM kv` : i === 8 ? sql`SELECT 1 / ${0}::int` : sql`SELECT ${i}::int AS i`,
  );
  const rs = await Promise.allSettled(ps);
  rs.forEach((r, i) => {
    if (i === 7) {
      expect(r.status).toBe('rejected');
      expect(errCode((r as PromiseRejectedResult).reason)).toBe('42501');
      expect(String((r as PromiseRejectedResult).reason.message)).toMatch(
        /^permission denied by policy: DELETE without WHERE/,
      );
    } else if (i === 8) {
      expect(errCode((r as PromiseRejectedResult).reason)).toBe('22012');
    } else {
      expect(r.status === 'fulfilled' && [...r.value]).toEqual([{ i }]);
    }
  });
  expect([...(await sql`SELECT count(*)::int AS n FROM kv`)]).toEqual([{ n: 100 }]);
});

test('prepared statements (prepare: true) are reused on the server and give the same rows', async () => {
  const sql = viaGateway({ prepare: true });
  for (let round = 0; round < 3; round++) {
    const rows = await Promise.all([1, 2, 3, 4, 5].map((id) => sql`SELECT id, v FROM kv WHERE id = ${id}`));
    expect(rows.map((r) => [...r])).toEqual([1, 2, 3, 4, 5].map((id) => [{ id, v: `v${id}` }]));
  }
  const prepared =
    await sql`SELECT statement FROM pg_prepared_statements WHERE statement LIKE 'SELECT id, v FROM kv%'`;
  expect(prepared.length).toBe(1);
  const unprepared = viaGateway({ prepare: false });
  expect([...(await unprepared`SELECT v FROM kv WHERE id = ${9}`)]).toEqual([{ v: 'v9' }]);
  expect([...(await unprepared`SELECT count(*)::int AS n FROM pg_prepared_statements`)]).toEqual([{ n: 0 }]);
});

test('sql.begin commits, rolls back on error, and savepoints work', async () => {
  const sql = viaGateway();
  const ids = await sql.begin(async (tx) => {
    const [a] = await tx`INSERT INTO ledger (amount) VALUES (${10}) RETURNING id`;
    const [b] = await tx`INSERT INTO ledger (amount) VALUES (${20}) RETURNING id`;
    await tx.savepoint(async (sp) => {
      await sp`INSERT INTO ledger (amount) VALUES (${30})`;
    });
    await tx
      .savepoint(async (sp) => {
        await sp`INSERT INTO ledger (amount) VALUES (${-1})`;
      })
      .catch((e: unknown) => expect(errCode(e)).toBe('23514'));
    return [a!.id as number, b!.id as number];
  });
  expect(ids).toHaveLength(2);
  await expect(
    sql.begin(async (tx) => {
      await tx`INSERT INTO ledger (amount) VALUES (${40})`;
      await tx`INSERT INTO ledger (amount) VALUES (${0})`;
    }),
  ).rejects.toMatchObject({ code: '23514' });
  expect([...(await sql`SELECT amount FROM ledger ORDER BY id`)]).toEqual([
    { amount: 10 },
    { amount: 20 },
    { amount: 30 },
  ]);
});

test('sql.unsafe with several statements in one simple query', async () => {
  const run = async (sql: postgres.Sql) => {
    const r = (await sql.unsafe(
      "SELECT 1 AS a; SELECT 'two' AS b, 2.5::float8 AS c; SHOW DateStyle",
    )) as unknown as postgres.RowList<postgres.Row[]>[];
    return r.map((x) => ({ rows: [...x], command: x.command }));
  };
  const expected = await run(direct());
  expect(expected).toHaveLength(3);
  expect(await run(viaGateway())).toEqual(expected);
  await expect(viaGateway().unsafe('SELECT 1; SELECT 1/0; SELECT 3')).rejects.toMatchObject({
    code: '22012',
  });
});

test('cursor(100) reads 10 000 rows in batches', async () => {
  const sql = viaGateway();
  const sizes: number[] = [];
  let next = 1;
  for await (const rows of sql`SELECT g AS id, md5(g::text) AS h FROM generate_series(1, ${10_000}::int) g ORDER BY g`.cursor(
    100,
  )) {
    sizes.push(rows.length);
    for (const r of rows) {
      expect(r.id).toBe(next);
      expect(r.h).toBe(createHash('md5').update(String(next)).digest('hex'));
      next++;
    }
  }
  expect(next).toBe(10_001);
  expect(sizes).toEqual(Array.from({ length: 100 }, () => 100));
  expect([...(await sql`SELECT 'after' AS s`)]).toEqual([{ s: 'after' }]);
});

test('COPY through .writable() and .readable()', async () => {
  const N = 50_000;
  const text = Array.from(
    { length: N },
    (_, i) => `${i + 1}\t${createHash('md5').update(String(i)).digest('hex')}\n`,
  ).join('');
  const sha = createHash('sha256').update(text).digest('hex');
  const sql = viaGateway();
  const w = await sql`COPY copy_t (id, h) FROM STDIN`.writable();
  const buf = Buffer.from(text);
  const chunks: Buffer[] = [];
  for (let i = 0; i < buf.length; i += 40_009) chunks.push(buf.subarray(i, i + 40_009));
  await pipeline(Readable.from(chunks), w);
  expect([...(await sql`SELECT count(*)::int AS n FROM copy_t`)]).toEqual([{ n: N }]);

  const readOut = async (s: postgres.Sql) => {
    const h = createHash('sha256');
    const r = await s`COPY (SELECT id, h FROM copy_t ORDER BY id) TO STDOUT`.readable();
    await pipeline(
      r,
      new Writable({
        write(chunk: Buffer, _e, cb) {
          h.update(chunk);
          cb();
        },
      }),
    );
    return h.digest('hex');
  };
  expect(await readOut(sql)).toBe(sha);
  expect(await readOut(direct())).toBe(sha);
});

test('sql.listen receives sql.notify through pgward', async () => {
  const listener = viaGateway();
  const notifier = viaGateway();
  const got: string[] = [];
  const sub = await listener.listen('pgward_pgjs_chan', (payload) => got.push(payload));
  for (let i = 0; i < 20; i++) await notifier.notify('pgward_pgjs_chan', `p${i}`);
  const deadline = Date.now() + 5000;
  while (got.length < 20 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  expect(got).toEqual(Array.from({ length: 20 }, (_, i) => `p${i}`));
  await sub.unlisten();
});

test('query.cancel() ends pg_sleep with 57014 within 1 s', async () => {
  const sql = viaGateway();
  const probe = direct();
  const [{ pid }] = (await sql`SELECT pg_backend_pid() AS pid`) as unknown as [{ pid: number }];
  const q = sql`SELECT pg_sleep(30)`;
  const ended = q.then(
    () => ({ err: null as unknown, at: Date.now() }),
    (err: unknown) => ({ err, at: Date.now() }),
  );
  const running = async () =>
    (
      await probe`SELECT 1 FROM pg_stat_activity WHERE pid = ${pid} AND state = 'active' AND query LIKE 'SELECT pg_sleep%'`
    ).length === 1;
  while (!(await running())) await new Promise((r) => setTimeout(r, 20));
  const sentAt = Date.now();
  await q.cancel();
  const { err, at } = await ended;
  expect(errCode(err)).toBe('57014');
  expect(at - sentAt).toBeLessThan(1000);
  console.log(`postgres.js cancel through pgward: query ended ${at - sentAt} ms after query.cancel()`);
  expect([...(await sql`SELECT 1 AS alive`)]).toEqual([{ alive: 1 }]);
});
