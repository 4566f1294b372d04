/**
 * Issue 9: the session's identity and the message sizes PostgreSQL accepts.
 * - BackendKeyData carries the upstream backend's real PID: `pg_backend_pid()` equals it, and
 *   `pg_terminate_backend(<that pid>)` from another connection ends the session (pool health checks
 *   and pg_stat_activity correlation rely on this); cancelling with the key still works.
 * - A Bind with 40,000 parameters (the count is an unsigned 16-bit integer, up to 65,535) works
 *   through pgward as it does directly.
 * Each measured directly first, then through pgward with the allow-all bundle.
 */
import {
  type BackendMessage,
  WireClient,
  dataRows,
  encodeCancelRequest,
  errorsOf,
  exchange,
  readBackendKeyData,
} from '../security/wire';
import { DIRECT, query, sessionSuite, transcript, type Target } from './session-helpers';
import { encodeExecute, encodeSync } from '../../gateway/src/protocol';
import { RawClient, type BackendMsg } from '../policy/raw-client';

const suite = sessionSuite('pgward_session_identity', { allowAll: true });

/** Test labels; the gateway's address is known only once beforeAll ran. */
const TARGETS = ['directly', 'through pgward'] as const;
type Label = (typeof TARGETS)[number];
const target = (label: Label): Target => (label === 'directly' ? DIRECT : suite.through);

async function session(t: Target, app: string): Promise<{ c: WireClient; startup: BackendMessage[] }> {
  const c = await WireClient.connect(t.host, t.port);
  const startup = await c.startup({ user: 'postgres', database: suite.db, application_name: app });
  return { c, startup };
}

function keyOf(msgs: BackendMessage[]): { processId: number; secretKey: Buffer } {
  const k = msgs.find((m) => m.type === 'K');
  if (!k) throw new Error('no BackendKeyData during startup');
  return readBackendKeyData(k.body);
}

async function oneValue(c: WireClient, sql: string): Promise<string | null> {
  const msgs = await c.query(sql);
  const errs = errorsOf(msgs);
  if (errs.length) throw new Error(`${sql}: ${errs[0]?.message}`);
  return dataRows(msgs)[0]?.[0] ?? null;
}

/** Waits (polling pg_stat_activity directly) until the backend of `app` is in pg_sleep. */
async function waitUntilSleeping(app: string): Promise<void> {
  const probe = await WireClient.connect(DIRECT.host, DIRECT.port);
  try {
    await probe.startup({ user: 'postgres', database: suite.db, application_name: 'pgward-session-probe' });
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const rows = dataRows(
        await probe.query(
          `SELECT 1 FROM pg_stat_activity WHERE application_name = '${app}' AND state = 'active' AND query LIKE '%pg_sleep%'`,
        ),
      );
      if (rows.length === 1) return;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`${app} never started its pg_sleep`);
  } finally {
    probe.destroy();
  }
}

describe('BackendKeyData carries the real backend PID', () => {
  test.each(TARGETS)('%s: pg_backend_pid() equals the PID in BackendKeyData', async (label) => {
    const t = target(label);
    const { c, startup } = await session(t, 'pgward-session-pid');
    try {
      const key = keyOf(startup);
      expect(Number(await oneValue(c, 'SELECT pg_backend_pid()'))).toBe(key.processId);
      // pg_stat_activity shows the session under that PID.
      expect(
        await oneValue(c, `SELECT application_name FROM pg_stat_activity WHERE pid = ${key.processId}`),
      ).toBe('pgward-session-pid');
    } finally {
      c.destroy();
    }
  });

  test.each(TARGETS)(
    '%s: pg_terminate_backend(<that PID>) from another connection ends the session with FATAL 57P01',
    async (label) => {
      const t = target(label);
      const app = `pgward-session-terminate-${label === 'directly' ? 'd' : 'p'}`;
      const { c, startup } = await session(t, app);
      const killer = await WireClient.connect(DIRECT.host, DIRECT.port);
      try {
        await killer.startup({ user: 'postgres', database: suite.db });
        const key = keyOf(startup);
        // Only ever this test's own backend: a PID that is not it terminates nothing (no row).
        const kill = `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = ${key.processId} AND application_name = '${app}'`;
        expect(await oneValue(killer, kill)).toBe('t');
        const rest = await c.readToClose(10_000);
        expect(c.isClosed).toBe(true);
        expect(errorsOf(rest)).toEqual([expect.objectContaining({ severity: 'FATAL', code: '57P01' })]);
      } finally {
        killer.destroy();
        c.destroy();
      }
    },
  );

  test.each(TARGETS)('%s: a CancelRequest with the key cancels pg_sleep (57014)', async (label) => {
    const t = target(label);
    const app = `pgward-session-cancel-${label === 'directly' ? 'd' : 'p'}`;
    const { c, startup } = await session(t, app);
    try {
      const key = keyOf(startup);
      c.write(query('SELECT pg_sleep(30)'));
      await waitUntilSleeping(app);
      const cancel = await exchange(t.host, t.port, encodeCancelRequest(key.processId, key.secretKey), 5000);
      expect(cancel.closed).toBe(true);
      expect(cancel.data).toHaveLength(0);
      const msgs = await c.readReady(1, 10_000);
      expect(errorsOf(msgs)).toEqual([expect.objectContaining({ code: '57014' })]);
      expect(await oneValue(c, 'SELECT 42')).toBe('42');
    } finally {
      c.destroy();
    }
  });
});

/** Parse with no declared types; the count words of Parse and Bind are uint16 in PostgreSQL. */
function bigParse(name: string, sql: string): Buffer {
  const body = Buffer.concat([Buffer.from(`${name}\0${sql}\0`, 'utf8'), Buffer.from([0, 0])]);
  const head = Buffer.alloc(5);
  head.write('P', 0, 'latin1');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

/** Bind of `values` (text format, one format code for all), written with uint16 counts. */
function bigBind(statement: string, values: readonly string[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`\0${statement}\0`, 'utf8')];
  const formats = Buffer.alloc(4);
  formats.writeUInt16BE(1, 0); // one format code, applied to every parameter
  formats.writeUInt16BE(0, 2); // text
  parts.push(formats);
  const count = Buffer.alloc(2);
  count.writeUInt16BE(values.length, 0);
  parts.push(count);
  for (const v of values) {
    const b = Buffer.from(v, 'utf8');
    const len = Buffer.alloc(4);
    len.writeInt32BE(b.length, 0);
    parts.push(len, b);
  }
  parts.push(Buffer.from([0, 0])); // no result format codes
  const body = Buffer.concat(parts);
  const head = Buffer.alloc(5);
  head.write('B', 0, 'latin1');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

describe('parameter counts are unsigned 16-bit', () => {
  test('a Bind with 40,000 parameters works through pgward as directly', async () => {
    const n = 40_000;
    const placeholders = Array.from({ length: n }, (_, i) => `$${i + 1}`).join(',');
    const sql = `SELECT cardinality(a), a[${n}] FROM (SELECT ARRAY[${placeholders}]::int[] AS a) s`;
    const values = Array.from({ length: n }, (_, i) => String(i + 1));
    const frames = [bigParse('s_big', sql), bigBind('s_big', values), encodeExecute(''), encodeSync()];
    const run = async (t: Target): Promise<string[]> => {
      const { client, startup } = await RawClient.connect(t.host, t.port, {
        user: 'postgres',
        database: suite.db,
      });
      try {
        expect(startup.at(-1)?.type).toBe('Z');
        client.send(...frames);
        const out: BackendMsg[] = [];
        for (let m = await client.next(60_000); m; m = await client.next(60_000)) {
          out.push(m);
          if (m.type === 'Z') break;
        }
        return transcript(out); // a FATAL and a closed connection read as ['E 08P01']
      } finally {
        client.close();
      }
    };
    const direct = await run(DIRECT);
    expect(direct).toEqual(['1', '2', `D ${n},${n}`, 'C SELECT 1', 'Z I']);
    expect(await run(suite.through)).toEqual(direct);
  }, 120_000);
});
