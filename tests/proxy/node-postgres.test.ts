/**
 * node-postgres (pg, pg-cursor, pg-copy-streams) through pgward with the shipped policy: the same
 * queries give the same rows, fields and errors as a direct connection; pipelines, cursors, COPY
 * both ways, LISTEN/NOTIFY, a 64 MiB bytea (with the gateway's memory sampled) and a cancel.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Client, type Notification, type QueryResult } from 'pg';
import Cursor from 'pg-cursor';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { startGateway, stopAllGateways, type RunningGateway } from '../helpers/gateway';
import { pgClient } from '../helpers/pg-clients';
import {
  DIRECT,
  dropDatabase,
  errCode,
  recreateDatabase,
  rssKiB,
  sendCancelRequest,
  uniqueDbName,
} from './proxy-helpers';

const DB = uniqueDbName('pgward_proxy_pg');

jest.setTimeout(60_000);

let gw: RunningGateway;
type PgConfig = NonNullable<Parameters<typeof pgClient>[0]['config']>;
// pg arms query_timeout for stream and cursor queries (pg-copy-streams, pg-cursor) too and never
// disarms it for them: a pending timer would keep jest alive. Jest's own timeout bounds every test.
const NO_QUERY_TIMEOUT: PgConfig = { query_timeout: 0 };
const viaGateway = (config: PgConfig = {}) =>
  pgClient({
    host: gw.host,
    port: gw.port,
    user: DIRECT.user,
    database: DB,
    config: { ...NO_QUERY_TIMEOUT, ...config },
  });
const direct = (config: PgConfig = {}) =>
  pgClient({ ...DIRECT, database: DB, config: { ...NO_QUERY_TIMEOUT, ...config } });

beforeAll(async () => {
  await recreateDatabase(DB);
  gw = await startGateway();
  const c = await direct();
  await c.query(`
    CREATE TABLE kv (id int PRIMARY KEY, v text NOT NULL, CONSTRAINT v_not_empty CHECK (v <> ''));
    INSERT INTO kv SELECT g, 'v' || g FROM generate_series(1, 100) g;
    CREATE TABLE copy_in (id int, h text, n numeric);
    CREATE TABLE blobs (id int PRIMARY KEY, data bytea);
  `);
  await c.end();
});

afterAll(async () => {
  await stopAllGateways();
  await dropDatabase(DB);
});

/** What a client observes of a query: rows, field metadata, command, or the error's fields. */
function outcome(r: PromiseSettledResult<QueryResult | QueryResult[]>): unknown {
  if (r.status === 'fulfilled') {
    const one = ({ rows, command, rowCount, fields }: QueryResult) => ({
      rows,
      command,
      rowCount,
      fields: fields.map((f) => ({ ...f })),
    });
    // A simple-protocol string with several statements gives one result per statement.
    return Array.isArray(r.value) ? r.value.map(one) : one(r.value);
  }
  const e = r.reason as Record<string, unknown>;
  const keep = [
    'message',
    'code',
    'severity',
    'detail',
    'hint',
    'position',
    'schema',
    'table',
    'column',
    'constraint',
    'routine',
  ];
  return Object.fromEntries(keep.map((k) => [k, e[k]]));
}

const PARAM_QUERIES: Array<{ text: string; values?: unknown[]; name?: string }> = [
  {
    text: 'SELECT $1::int AS i, $2::text AS t, $3::boolean AS b, $4::numeric AS n',
    values: [42, 'héllo', true, '3.14'],
  },
  {
    text: 'SELECT $1::text IS NULL AS is_null, $2::int[] AS arr, $3::jsonb AS j',
    values: [null, [1, 2, 3], { a: [1, { b: 'c' }] }],
  },
  {
    text: 'SELECT $1::bytea AS bin, $2::timestamptz AS ts',
    values: [Buffer.from([0, 1, 2, 255]), new Date('2024-05-06T07:08:09Z')],
  },
  { text: 'SELECT id, v FROM kv WHERE id = ANY($1::int[]) ORDER BY id', values: [[3, 1, 99]] },
  { name: 'kv_by_id', text: 'SELECT v FROM kv WHERE id = $1', values: [7] },
  { name: 'kv_by_id', text: 'SELECT v FROM kv WHERE id = $1', values: [8] },
  { name: 'kv_by_id', text: 'SELECT v FROM kv WHERE id = $1', values: [1000] },
  { name: 'kv_count', text: 'SELECT count(*) FROM kv WHERE id > $1', values: [50] },
  { text: 'INSERT INTO kv (id, v) VALUES ($1, $2)', values: [1, 'duplicate'] },
  { text: 'INSERT INTO kv (id, v) VALUES ($1, $2)', values: [1001, ''] },
  { text: 'SELECT $1::int', values: ['not a number'] },
  { text: 'SELECT no_such_column FROM kv' },
  { text: 'UPDATE kv SET v = $1 WHERE id = $2 RETURNING id, v', values: ['updated', 5] },
  { text: 'UPDATE kv SET v = $1 WHERE id = $2 RETURNING id, v', values: ['v5', 5] },
  { name: 'kv_by_id', text: 'SELECT v FROM kv WHERE id = $1', values: [5] },
  { text: 'SELECT 1 AS a; SELECT 2 AS b' },
];

async function runAll(c: Client, pipelined: boolean): Promise<unknown[]> {
  if (pipelined) {
    // Fired without awaiting: pg queues them (or, with pipeline: true, writes them all at once).
    const ps = PARAM_QUERIES.map((q) => c.query(q) as Promise<QueryResult | QueryResult[]>);
    return (await Promise.allSettled(ps)).map(outcome);
  }
  const out: unknown[] = [];
  for (const q of PARAM_QUERIES) {
    out.push(outcome((await Promise.allSettled([c.query(q) as Promise<QueryResult | QueryResult[]>]))[0]!));
  }
  return out;
}

describe('queries, prepared statements and errors', () => {
  let expected: unknown[];

  beforeAll(async () => {
    const c = await direct();
    expected = await runAll(c, false);
    await c.end();
    // The script fails exactly where it should (else identical results prove little).
    const errors = expected.map((o) => (o as { code?: string }).code);
    expect(errors.filter((e) => e !== undefined)).toEqual(['23505', '23514', '22P02', '42703']);
  });

  test('one by one', async () => {
    const c = await viaGateway();
    expect(await runAll(c, false)).toEqual(expected);
    await c.end();
  });

  test('fired without awaiting (queued by pg), one failing in the middle', async () => {
    const c = await viaGateway();
    expect(await runAll(c, true)).toEqual(expected);
    await c.end();
  });

  test('pg pipeline mode: everything written before the first answer', async () => {
    const c = await viaGateway({ pipeline: true });
    expect(await runAll(c, true)).toEqual(expected);
    // The connection is still usable after the errors.
    expect((await c.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
    await c.end();
  });

  test('an error inside a transaction aborts it; ROLLBACK recovers', async () => {
    const c = await viaGateway();
    await c.query('BEGIN');
    await c.query('INSERT INTO kv VALUES (500, $1)', ['in tx']);
    await expect(c.query('SELECT 1/0')).rejects.toMatchObject({ code: '22012' });
    await expect(c.query('SELECT 1')).rejects.toMatchObject({ code: '25P02' });
    await c.query('ROLLBACK');
    expect((await c.query('SELECT count(*)::int AS n FROM kv WHERE id = 500')).rows).toEqual([{ n: 0 }]);
    await c.end();
  });
});

test('pg-cursor reads 10 000 rows in batches', async () => {
  const c = await viaGateway();
  const cursor = c.query(
    new Cursor<{ id: number; h: string }>(
      'SELECT g AS id, md5(g::text) AS h FROM generate_series(1, $1::int) g ORDER BY g',
      [10_000],
    ),
  );
  const batches: number[] = [];
  let next = 1;
  for (;;) {
    const rows = await cursor.read(1000);
    if (rows.length === 0) break;
    batches.push(rows.length);
    for (const r of rows) {
      expect(r.id).toBe(next);
      expect(r.h).toBe(createHash('md5').update(String(next)).digest('hex'));
      next++;
    }
    // Other statements on the connection in between are not allowed while the portal is open
    // in pg; the batches themselves are separate Execute round trips.
  }
  await cursor.close();
  expect(next).toBe(10_001);
  expect(batches).toEqual(Array.from({ length: 10 }, () => 1000));
  expect((await c.query('SELECT 2 AS after_cursor')).rows).toEqual([{ after_cursor: 2 }]);
  await c.end();
});

test('pg-copy-streams: COPY FROM STDIN and COPY TO STDOUT of 100 000 rows', async () => {
  const N = 100_000;
  const lines: string[] = [];
  for (let i = 1; i <= N; i++)
    lines.push(`${i}\t${createHash('md5').update(String(i)).digest('hex')}\t${(i / 7).toFixed(4)}\n`);
  const input = lines.join('');
  const inputSha = createHash('sha256').update(input).digest('hex');

  const c = await viaGateway();
  // Chunks of ~64 KiB that do not line up with rows (or with CopyData frames).
  const chunks: Buffer[] = [];
  const buf = Buffer.from(input);
  for (let i = 0; i < buf.length; i += 65_521) chunks.push(buf.subarray(i, i + 65_521));
  const ingest = c.query(copyFrom('COPY copy_in (id, h, n) FROM STDIN'));
  await pipeline(Readable.from(chunks), ingest);
  expect(ingest.rowCount).toBe(N);

  const copyOut = async (client: Client): Promise<string> => {
    const h = createHash('sha256');
    await pipeline(
      client.query(copyTo('COPY (SELECT id, h, n FROM copy_in ORDER BY id) TO STDOUT')),
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          h.update(chunk);
          cb();
        },
      }),
    );
    return h.digest('hex');
  };
  expect(await copyOut(c)).toBe(inputSha);
  const d = await direct();
  expect(await copyOut(d)).toBe(inputSha);
  await d.end();

  // A COPY FROM STDIN that fails on the server (bad row) leaves the connection usable.
  const bad = c.query(copyFrom('COPY copy_in (id, h, n) FROM STDIN'));
  await expect(
    pipeline(Readable.from([Buffer.from('1\ta\t1\nnot-an-int\tb\t2\n')]), bad),
  ).rejects.toMatchObject({
    code: '22P02',
  });
  expect((await c.query('SELECT count(*)::int AS n FROM copy_in')).rows).toEqual([{ n: N }]);
  await c.end();
});

test('LISTEN/NOTIFY between two clients through pgward', async () => {
  const listener = await viaGateway();
  const notifier = await viaGateway();
  const got: Notification[] = [];
  listener.on('notification', (n) => got.push(n));
  await listener.query('LISTEN pgward_proxy_chan');
  const notifierPid = (await notifier.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  await notifier.query("NOTIFY pgward_proxy_chan, 'hello'");
  await notifier.query('BEGIN');
  for (let i = 0; i < 100; i++)
    await notifier.query('SELECT pg_notify($1, $2)', ['pgward_proxy_chan', `n${i}`]);
  await notifier.query('COMMIT');
  // Delivered at COMMIT only.
  const deadline = Date.now() + 5000;
  while (got.length < 101 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  expect(got.map((n) => n.payload)).toEqual(['hello', ...Array.from({ length: 100 }, (_, i) => `n${i}`)]);
  expect(got.every((n) => n.channel === 'pgward_proxy_chan' && n.processId === notifierPid)).toBe(true);
  await listener.query('UNLISTEN *');
  await listener.end();
  await notifier.end();
});

test('a 64 MiB bytea goes in and out intact with bounded gateway memory', async () => {
  const pid = gw.proc.pid!;
  const value = randomBytes(64 * 1024 * 1024);
  const sha = createHash('sha256').update(value).digest('hex');
  const samples: number[] = [];
  const before = rssKiB(pid);
  const timer = setInterval(() => samples.push(rssKiB(pid)), 25);
  try {
    const c = await viaGateway();
    // A Buffer parameter goes in binary format: one ~64 MiB Bind message.
    await c.query('INSERT INTO blobs (id, data) VALUES ($1, $2)', [1, value]);
    const server = await c.query<{ sha: string; len: number }>(
      "SELECT encode(sha256(data), 'hex') AS sha, length(data) AS len FROM blobs WHERE id = 1",
    );
    expect(server.rows).toEqual([{ sha, len: value.length }]);
    // Read back as binary COPY (one ~64 MiB CopyData: 19-byte header, int16 field count,
    // int32 length, the bytes, int16 -1 trailer) and as a text DataRow (hex, ~128 MiB).
    const parts: Buffer[] = [];
    await pipeline(
      c.query(copyTo('COPY (SELECT data FROM blobs WHERE id = 1) TO STDOUT (FORMAT binary)')),
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          parts.push(chunk);
          cb();
        },
      }),
    );
    const copied = Buffer.concat(parts);
    expect(copied.readInt16BE(19)).toBe(1);
    expect(copied.readInt32BE(21)).toBe(value.length);
    expect(copied.length).toBe(19 + 2 + 4 + value.length + 2);
    expect(
      createHash('sha256')
        .update(copied.subarray(25, 25 + value.length))
        .digest('hex'),
    ).toBe(sha);
    parts.length = 0;
    const txt = await c.query<{ data: Buffer }>('SELECT data FROM blobs WHERE id = 1');
    expect(createHash('sha256').update(txt.rows[0]!.data).digest('hex')).toBe(sha);
    await c.end();
  } finally {
    clearInterval(timer);
  }
  await new Promise((r) => setTimeout(r, 1500));
  const after = rssKiB(pid);
  const peak = Math.max(before, ...samples);
  const mib = (k: number) => Math.round(k / 1024);
  console.log(
    `gateway RSS with a 64 MiB bytea: before ${mib(before)} MiB, peak ${mib(peak)} MiB (+${mib(peak - before)}), ` +
      `after ${mib(after)} MiB (${samples.length} samples)`,
  );
  expect(peak - before).toBeLessThan(400 * 1024);
});

test('a client that stops reading a 160 MiB COPY TO STDOUT stalls the server, not pgward memory', async () => {
  const pid = gw.proc.pid!;
  const sqlText = "COPY (SELECT g, repeat('x', 1000) FROM generate_series(1, 160000) g) TO STDOUT";
  const c = await viaGateway();
  const probe = await direct();
  const backendPid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  const forwarded = async (): Promise<number> => {
    const text = await (await gw.admin('/metrics')).text();
    const m = /^pgward_bytes_total\{direction="upstream_to_client"\} (\d+)/m.exec(text);
    if (!m) throw new Error('no pgward_bytes_total{direction="upstream_to_client"} in /metrics');
    return Number(m[1]);
  };
  const forwardedBefore = await forwarded();
  const before = rssKiB(pid);
  const samples: number[] = [];
  const timer = setInterval(() => samples.push(rssKiB(pid)), 25);
  // Not consumed yet: pg-copy-streams stops reading the socket once its buffer is full.
  const stream = c.query(copyTo(sqlText));
  let waitEvent: string | null = null;
  try {
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const r = await probe.query<{ wait_event: string | null }>(
        'SELECT wait_event FROM pg_stat_activity WHERE pid = $1',
        [backendPid],
      );
      waitEvent = r.rows[0]?.wait_event ?? null;
      if (waitEvent === 'ClientWrite') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    // Hold the stall a little longer while sampling.
    await new Promise((r) => setTimeout(r, 1000));
  } finally {
    clearInterval(timer);
  }
  const stalledPeak = Math.max(before, ...samples);
  // Everything pgward handed to the client socket, flushed or still queued in it.
  const forwardedWhileStalled = (await forwarded()) - forwardedBefore;
  const digest = async (readable: NodeJS.ReadableStream): Promise<string> => {
    const h = createHash('sha256');
    await pipeline(
      readable,
      new Writable({
        write(chunk: Buffer, _e, cb) {
          h.update(chunk);
          cb();
        },
      }),
    );
    return h.digest('hex');
  };
  const got = await digest(stream);
  const expected = await digest(probe.query(copyTo(sqlText)));
  await probe.end();
  await c.end();
  const mib = (k: number) => Math.round(k / 1024);
  console.log(
    `gateway RSS while a client stalls a 160 MiB COPY: before ${mib(before)} MiB, peak ${mib(stalledPeak)} MiB ` +
      `(+${mib(stalledPeak - before)}); forwarded before the stall ${mib(forwardedWhileStalled / 1024)} MiB; ` +
      `server wait_event ${String(waitEvent)}`,
  );
  // The server blocks writing to pgward, pgward holds no more than socket buffers' worth
  // (160 MiB would be queued for the client without backpressure).
  expect(waitEvent).toBe('ClientWrite');
  expect(forwardedWhileStalled).toBeLessThan(32 * 1024 * 1024);
  expect(stalledPeak - before).toBeLessThan(128 * 1024);
  expect(got).toBe(expected);
});

test('an error message larger than 1 MiB reaches the client and the session goes on', async () => {
  const run = async (c: Client) => {
    const err = await c.query("SELECT repeat('x', 1500000)::int").then(
      () => null,
      (e: unknown) => e as Error & { code?: string },
    );
    const next = await c.query("SELECT 'next' AS n").then(
      (r) => r.rows,
      (e: unknown) => String(e),
    );
    return { code: err?.code, length: err?.message.length, next };
  };
  const d = await direct();
  const expected = await run(d);
  await d.end();
  expect(expected).toMatchObject({ code: '22P02', next: [{ n: 'next' }] });
  expect(expected.length).toBeGreaterThan(1024 * 1024);
  const c = await viaGateway();
  expect(await run(c)).toEqual(expected);
  await c.end();
});

test('a CancelRequest with the key pg received ends pg_sleep with 57014 within 1 s', async () => {
  const c = await viaGateway();
  const backendPid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  const key = {
    pid: (c as unknown as { processID: number }).processID,
    secret: (c as unknown as { secretKey: number }).secretKey,
  };
  // The client is told the backend's real pid; the secret is pgward's own (the server's never
  // reaches the client).
  expect(key.pid).toBe(backendPid);

  const ended = c.query('SELECT pg_sleep(30)').then(
    () => ({ err: null as unknown, at: Date.now() }),
    (err: unknown) => ({ err, at: Date.now() }),
  );
  const probe = await direct();
  const running = async () =>
    (
      await probe.query(
        "SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = 'active' AND query LIKE 'SELECT pg_sleep%'",
        [backendPid],
      )
    ).rowCount === 1;
  while (!(await running())) await new Promise((r) => setTimeout(r, 20));

  // A wrong secret is ignored (and the query keeps running).
  await sendCancelRequest(gw.host, gw.port, key.pid, (key.secret ^ 0x5a5a5a5a) | 0);
  await new Promise((r) => setTimeout(r, 300));
  expect(await running()).toBe(true);

  const sentAt = Date.now();
  await sendCancelRequest(gw.host, gw.port, key.pid, key.secret);
  const { err, at } = await ended;
  expect(errCode(err)).toBe('57014');
  expect((err as Error).message).toBe('canceling statement due to user request');
  expect(at - sentAt).toBeLessThan(1000);
  console.log(`pg cancel through pgward: query ended ${at - sentAt} ms after the CancelRequest`);
  // The session goes on.
  expect((await c.query('SELECT 1 AS alive')).rows).toEqual([{ alive: 1 }]);
  await probe.end();
  await c.end();
});

test('a client that ends normally leaves no warning in the gateway log', async () => {
  const from = gw.logs.length;
  const c = await viaGateway();
  expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  await c.end();
  await new Promise((r) => setTimeout(r, 300));
  const noisy = gw.logs.slice(from).filter((l) => typeof l.level === 'number' && l.level >= 40);
  expect(noisy).toEqual([]);
});
