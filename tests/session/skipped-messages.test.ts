/**
 * Issue 9: messages the server skipped change nothing. A Close sent after an error in the same
 * pipeline is skipped (the server discards messages until Sync), so the statement stays; a
 * multi-statement Query stops at its first error, so a later PREPARE or DEALLOCATE in it never ran.
 * With the shipped bundle: pgward must keep judging the statement the server still has, so what
 * runs is what was judged (checked in the decision log), and the client sees what it sees directly.
 */
import { encodeClose, encodeParse, encodeSync, readErrorFields } from '../../gateway/src/protocol';
import { ensureRoles } from '../policy/policy-helpers';
import { RawClient } from '../policy/raw-client';
import {
  DIRECT,
  bindExec,
  judgedBinds,
  query,
  rowValues,
  sessionSuite,
  transcripts,
  type Target,
} from './session-helpers';

// app: an ordinary user of the shipped policies
const suite = sessionSuite('pgward_session_skipped', { decisionLog: true, before: ensureRoles });

const app = (): { user: string; database: string } => ({ user: 'app', database: suite.db });

/** Runs a direct statement as postgres (test setup and checks). */
async function directSql(sql: string): Promise<string[]> {
  const { client } = await RawClient.connect(DIRECT.host, DIRECT.port, {
    user: 'postgres',
    database: suite.db,
  });
  try {
    client.send(query(sql));
    const out = await client.readUntilReady();
    return out.filter((m) => m.type === 'D').map((m) => rowValues(m).join(','));
  } finally {
    client.close();
  }
}

/** Directly, then through pgward, each run starting from t with ids 1..10. */
async function both(
  batches: Buffer[][],
): Promise<{ direct: string[][]; proxied: string[][]; since: number }> {
  await directSql('DELETE FROM t; INSERT INTO t SELECT g, g FROM generate_series(1, 10) g');
  const direct = await transcripts(DIRECT, app(), batches);
  await directSql('DELETE FROM t; INSERT INTO t SELECT g, g FROM generate_series(1, 10) g');
  const since = suite.gw.logs.length;
  const proxied = await transcripts(suite.through, app(), batches);
  return { direct, proxied, since };
}

const error = (): Buffer => encodeParse('', 'SELEC 1'); // 42601: the rest of the pipeline is skipped

describe('a Close the server skipped', () => {
  test('the statement stays SELECT 1 on the server: a later Parse of a DELETE under its name fails (42P05) and the Bind runs and is judged as SELECT 1', async () => {
    const batches = [
      [encodeParse('s_keep', 'SELECT 1'), encodeSync()],
      [error(), encodeClose('S', 's_keep'), encodeSync()],
      [encodeParse('s_keep', 'DELETE FROM t WHERE id = 1'), encodeSync()],
      bindExec('s_keep'),
    ];
    const { direct, proxied, since } = await both(batches);
    expect(direct).toEqual([
      ['1', 'Z I'],
      ['E 42601', 'Z I'],
      ['E 42P05', 'Z I'],
      ['2', 'D 1', 'C SELECT 1', 'Z I'],
    ]);
    expect(await directSql('SELECT count(*) FROM t')).toEqual(['10']);
    expect(proxied).toEqual(direct);
    expect(await judgedBinds(suite.gw, since, 1)).toEqual(['SELECT 1']);
  });

  test('the statement stays a DELETE on the server: pgward judges the DELETE that runs, not the SELECT whose Parse failed', async () => {
    const batches = [
      [encodeParse('s_del', 'DELETE FROM t WHERE id = 2'), encodeSync()],
      [error(), encodeClose('S', 's_del'), encodeSync()],
      [encodeParse('s_del', 'SELECT 1'), encodeSync()],
      bindExec('s_del'),
    ];
    const { direct, proxied, since } = await both(batches);
    expect(direct).toEqual([
      ['1', 'Z I'],
      ['E 42601', 'Z I'],
      ['E 42P05', 'Z I'],
      ['2', 'C DELETE 1', 'Z I'],
    ]);
    expect(proxied).toEqual(direct);
    expect(await judgedBinds(suite.gw, since, 1)).toEqual(['DELETE FROM t WHERE id = 2']);
  });
});

describe('a multi-statement Query that stops at an error', () => {
  test('its DEALLOCATE never ran: the statement is still there and binds as directly', async () => {
    const batches = [
      [encodeParse('s_dealloc', 'SELECT 2'), encodeSync()],
      [query('SELECT 1/0; DEALLOCATE s_dealloc')],
      bindExec('s_dealloc'),
    ];
    const { direct, proxied, since } = await both(batches);
    expect(direct).toEqual([
      ['1', 'Z I'],
      ['E 22012', 'Z I'],
      ['2', 'D 2', 'C SELECT 1', 'Z I'],
    ]);
    expect(proxied).toEqual(direct);
    expect(await judgedBinds(suite.gw, since, 1)).toEqual(['SELECT 2']);
  });

  test('its PREPARE never ran: the name does not exist (26000 as PostgreSQL words it), then a Parse under that name works', async () => {
    const batches = [
      [query('SELECT 1/0; PREPARE s_prep AS DELETE FROM t WHERE id = 3')],
      bindExec('s_prep'),
      [encodeParse('s_prep', 'SELECT 3'), ...bindExec('s_prep')],
    ];
    const { direct, proxied, since } = await both(batches);
    expect(direct).toEqual([
      ['E 22012', 'Z I'],
      ['E 26000', 'Z I'],
      ['1', '2', 'D 3', 'C SELECT 1', 'Z I'],
    ]);
    expect(proxied).toEqual(direct);
    // What pgward judged for the two Binds: nothing (no such statement), then the SELECT.
    const judged = await judgedBinds(suite.gw, since, 1);
    expect(judged.at(-1)).toEqual('SELECT 3');
    expect(judged).not.toContain('DELETE FROM t WHERE id = 3');
  });

  test('the 26000 for a statement that never ran reads as PostgreSQL’s own', async () => {
    const run = async (t: Target): Promise<string[]> => {
      const { client } = await RawClient.connect(t.host, t.port, app());
      try {
        client.send(query('SELECT 1/0; PREPARE s_msg AS SELECT 1'));
        await client.readUntilReady();
        client.send(...bindExec('s_msg'));
        const out = await client.readUntilReady();
        return out.filter((m) => m.type === 'E').map((m) => readErrorFields(m.frame).message ?? '');
      } finally {
        client.close();
      }
    };
    const direct = await run(DIRECT);
    expect(direct).toEqual(['prepared statement "s_msg" does not exist']);
    expect(await run(suite.through)).toEqual(direct);
  });
});
