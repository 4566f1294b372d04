/**
 * truncateStartupName against the real PostgreSQL: the server cuts the startup packet's user name
 * to 63 bytes without regard to characters, while CREATE ROLE (namein) clips at a character. Roles
 * are named per test process so parallel runs do not collide.
 */
import { Client } from 'pg';
import { LOCAL_PG } from '../helpers/cluster';
import { truncateStartupName } from '../../gateway/src/protocol';

const prefix = `pgw${process.pid}_`;
/** A name of `bytes` ASCII bytes starting with the per-process prefix. */
const ascii = (bytes: number): string => prefix + 'a'.repeat(bytes - prefix.length);

async function admin<T>(fn: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client({ ...LOCAL_PG, database: 'postgres', application_name: 'pgward-startup-names' });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

async function connectAs(user: string): Promise<{ user: string } | { error: string; code: string }> {
  const c = new Client({ ...LOCAL_PG, user, database: 'postgres' });
  c.on('error', () => undefined);
  try {
    await c.connect();
    const r = await c.query<{ u: string }>('SELECT current_user AS u');
    await c.end();
    return { user: (r.rows[0] as { u: string }).u };
  } catch (e) {
    const err = e as { message: string; code: string };
    return { error: err.message, code: err.code };
  }
}

// 61 ASCII bytes + 'é' (2 bytes) = exactly 63 bytes: kept whole by CREATE ROLE.
const role63 = `${ascii(61)}é`;
// 62 ASCII bytes + 'é' = 64 bytes: CREATE ROLE clips it at the character, to the 62 ASCII bytes.
const role64 = `${ascii(62)}é`;
const created: string[] = [];

beforeAll(async () => {
  await admin(async (c) => {
    for (const r of [role63, role64]) {
      await c.query(`CREATE ROLE "${r}" LOGIN`);
      created.push(r);
    }
  });
});

afterAll(async () => {
  await admin(async (c) => {
    for (const r of created) await c.query(`DROP ROLE IF EXISTS "${r}"`);
  });
});

test('CREATE ROLE clips at a character boundary (namein), the startup packet does not', async () => {
  const names = await admin(async (c) =>
    (
      await c.query<{ n: string }>('SELECT rolname AS n FROM pg_roles WHERE rolname LIKE $1', [`${prefix}%`])
    ).rows
      .map((r) => r.n)
      .sort(),
  );
  expect(names).toEqual([ascii(62), role63].sort());
});

test('a longer name logs in as its first 63 bytes, exactly truncateStartupName', async () => {
  const sent = `${role63}xyz`;
  expect(truncateStartupName(sent)).toBe(role63);
  expect(await connectAs(sent)).toEqual({ user: role63 });
  // ASCII: a suffix after 63 bytes is dropped too.
  expect(truncateStartupName(`${ascii(63)}_suffix`)).toBe(ascii(63));
});

test('a cut inside a character is not moved to the boundary: the role CREATE ROLE made is not found', async () => {
  const sent = role64; // 64 bytes: the server keeps 62 ASCII bytes and the first byte of 'é'
  const cut = truncateStartupName(sent);
  expect(Buffer.byteLength(cut)).not.toBe(62);
  expect(cut).toBe(`${ascii(62)}\ufffd`);
  const r = await connectAs(sent);
  expect(r).toMatchObject({ code: '28000' });
  // The server quotes the 63 bytes it looked up; decoded as UTF-8 the lone 0xC3 is U+FFFD.
  expect((r as { error: string }).error).toBe(`role "${cut}" does not exist`);
});
