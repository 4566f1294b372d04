/**
 * Issue 9: the startup phase as PostgreSQL runs it.
 * - A Terminate written before the startup packet (its bytes read as a length PostgreSQL refuses),
 *   or any invalid startup length: the server logs it (COMMERROR) and closes without a byte.
 * - User and database names are cut to NAMEDATALEN-1 (63) bytes before anything looks them up; a
 *   listed name sent with a suffix logs in as that role, so pgward must judge it as that role.
 * Each measured directly first, then through pgward.
 */
import path from 'node:path';
import {
  buildBundleFromDir,
  buildBundleWithData,
  REPO,
  startGateway,
  type RunningGateway,
} from '../helpers/gateway';
import { ensureRoles, rejection, withDirect } from '../policy/policy-helpers';
import { pgClient } from '../helpers/pg-clients';
import { exchange, untypedPacket } from '../security/wire';
import { DIRECT, dropDatabase, sessionDatabase, type Target } from './session-helpers';

let db: string;
let allowAll: RunningGateway;
let shipped: RunningGateway;

/** 63-byte role names: what the server keeps of any longer name sent at startup. */
const BLOCKED = 'pgward_session_blocked_'.padEnd(63, 'b');
const READ_ONLY = 'pgward_session_readonly_'.padEnd(63, 'r');

beforeAll(async () => {
  await ensureRoles();
  db = await sessionDatabase('pgward_session_startup');
  await withDirect('postgres', async (c) => {
    for (const r of [BLOCKED, READ_ONLY]) {
      const found = await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [r]);
      if (found.rowCount === 0) {
        await c.query(`CREATE ROLE "${r}" LOGIN`).catch((err: { code?: string }) => {
          if (err.code !== '42710' && err.code !== '23505') throw err; // created concurrently
        });
      }
    }
  });
  const [allowAllBundle, listed] = await Promise.all([
    buildBundleFromDir(path.join(REPO, 'tests', 'fixtures', 'bundles', 'allow-all')),
    buildBundleWithData({ blocked_users: ['mallory', BLOCKED], read_only_users: ['readonly', READ_ONLY] }),
  ]);
  [allowAll, shipped] = await Promise.all([
    startGateway({ bundle: allowAllBundle, config: { audit: { sink: 'none' } } }),
    startGateway({ bundle: listed, config: { audit: { sink: 'none' } } }),
  ]);
}, 180_000);

afterAll(async () => {
  await Promise.all([allowAll?.stop(), shipped?.stop()]);
  if (db) await dropDatabase(db);
});

const gwTarget = (gw: RunningGateway): Target => ({ host: gw.host, port: gw.port });

describe('invalid startup lengths close the socket without a byte', () => {
  const cases: Array<[string, () => Buffer]> = [
    ['Terminate before the startup packet', () => Buffer.from([0x58, 0, 0, 0, 4])],
    ['length 4 (shorter than a protocol version)', () => untypedPacket(Buffer.alloc(0))],
    ['length 10,005 (above the 10,000-byte cap)', () => untypedPacket(Buffer.alloc(10_001))],
  ];
  test.each(cases)('%s', async (_label, bytes) => {
    const direct = await exchange(DIRECT.host, DIRECT.port, bytes(), 5000);
    expect(direct.closed).toBe(true);
    expect(direct.data).toHaveLength(0);
    const proxied = await exchange(allowAll.host, allowAll.port, bytes(), 5000);
    expect(proxied.closed).toBe(true);
    expect(proxied.messages.map((m) => m.type)).toEqual([]);
    expect(proxied.data).toHaveLength(0);
  });
});

describe('names longer than 63 bytes are judged as PostgreSQL truncates them', () => {
  const whoAmI = async (t: Target, user: string): Promise<unknown> => {
    const c = await pgClient({ host: t.host, port: t.port, user, database: db });
    try {
      return (await c.query('SELECT current_user AS u')).rows[0];
    } finally {
      await c.end();
    }
  };

  test('directly, a listed 63-byte name with a suffix logs in as that role', async () => {
    expect(await whoAmI(DIRECT, `${BLOCKED}_suffix`)).toEqual({ u: BLOCKED });
    expect(await whoAmI(DIRECT, `${READ_ONLY}xyz`)).toEqual({ u: READ_ONLY });
    // control: through the gateway whose policy does not list it, the same login works
    expect(await whoAmI(gwTarget(allowAll), `${BLOCKED}_suffix`)).toEqual({ u: BLOCKED });
  });

  test('a blocked role sent with a suffix is refused at startup, as the role itself is', async () => {
    const t = gwTarget(shipped);
    const exact = await rejection(pgClient({ host: t.host, port: t.port, user: BLOCKED, database: db }));
    expect(exact).toMatchObject({ severity: 'FATAL', code: '28000' });
    const suffixed = await rejection(
      pgClient({ host: t.host, port: t.port, user: `${BLOCKED}_suffix`, database: db }),
    );
    expect(suffixed).toMatchObject({ severity: 'FATAL', code: '28000', message: exact.message });
  });

  test('a read-only role sent with a suffix cannot write, as the role itself cannot', async () => {
    const t = gwTarget(shipped);
    const attempt = async (user: string): Promise<unknown> => {
      const c = await pgClient({ host: t.host, port: t.port, user, database: db });
      try {
        return await c.query('UPDATE t SET v = v WHERE id = 1').then(
          () => 'written',
          (e: { code?: string }) => e.code,
        );
      } finally {
        await c.end();
      }
    };
    const exact = await attempt(READ_ONLY);
    expect(exact).not.toBe('written');
    expect(await attempt(`${READ_ONLY}xyz`)).toBe(exact);
  });

  test('a name cut inside a multi-byte character: the outcome through pgward is the direct one', async () => {
    // PostgreSQL 15 cuts the startup packet's names at byte 63 (ProcessStartupPacket), not at a
    // character boundary: 62 ASCII bytes + "é" keeps the first byte of "é", which names no role, while
    // CREATE ROLE (an identifier, cut with pg_mbcliplen) keeps the 62 ASCII bytes.
    const role = 'pgward_session_mb_'.padEnd(62, 'm');
    await withDirect('postgres', async (c) => {
      const found = await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role]);
      if (found.rowCount === 0) await c.query(`CREATE ROLE "${role}" LOGIN`).catch(() => undefined);
    });
    const outcome = async (t: Target): Promise<unknown> =>
      whoAmI(t, `${role}éx`).then(
        (row) => row,
        (e: { code?: string; severity?: string }) => ({ code: e.code, severity: e.severity }),
      );
    const direct = await outcome(DIRECT);
    expect(direct).toEqual({ code: '28000', severity: 'FATAL' }); // role "…m\xc3" does not exist
    expect(await outcome(gwTarget(allowAll))).toEqual(direct);
  });

  test('a database name with a suffix reaches the 63-byte database directly and through pgward', async () => {
    const long = 'pgward_session_longdb_'.padEnd(63, 'd');
    await withDirect('postgres', async (c) => {
      await c.query(`DROP DATABASE IF EXISTS "${long}" WITH (FORCE)`);
      await c.query(`CREATE DATABASE "${long}"`);
    });
    try {
      const where = async (t: Target): Promise<unknown> => {
        const c = await pgClient({ host: t.host, port: t.port, user: 'postgres', database: `${long}_more` });
        try {
          return (await c.query('SELECT current_database() AS d')).rows[0];
        } finally {
          await c.end();
        }
      };
      const direct = await where(DIRECT);
      expect(direct).toEqual({ d: long });
      expect(await where(gwTarget(allowAll))).toEqual(direct);
    } finally {
      await withDirect('postgres', (c) => c.query(`DROP DATABASE IF EXISTS "${long}" WITH (FORCE)`));
    }
  });
});
