/**
 * pgbench through pgward: initialisation (DROP/CREATE/COPY/ALTER/VACUUM, hence the admin bundle),
 * then the TPC-B-like script in every query mode and with a new connection per transaction.
 * Every run must finish with exit code 0 and no failed transaction.
 */
import { stopAllGateways, type RunningGateway } from '../helpers/gateway';
import { pgClient } from '../helpers/pg-clients';
import { runPgbench, type ProcessResult } from '../helpers/psql';
import { DIRECT, dropDatabase, recreateDatabase, startAdminGateway, uniqueDbName } from './proxy-helpers';

const DB = uniqueDbName('pgward_proxy_bench');

jest.setTimeout(90_000);

let gw: RunningGateway;

beforeAll(async () => {
  await recreateDatabase(DB);
  gw = await startAdminGateway();
});

afterAll(async () => {
  await stopAllGateways();
  await dropDatabase(DB);
});

function bench(args: string[]): Promise<ProcessResult> {
  return runPgbench(
    ['-h', DIRECT.host, '-p', String(gw.port), '-U', DIRECT.user, ...args, DB],
    {},
    { timeoutMs: 80_000 },
  );
}

/** Parses pgbench's summary; throws with the whole output when a line is missing. */
function summary(r: ProcessResult): { processed: number; failed: number } {
  const out = r.stdout;
  const processed = /number of transactions actually processed: (\d+)/.exec(out);
  const failed = /number of failed transactions: (\d+) \(/.exec(out);
  if (!processed || !failed) throw new Error(`unexpected pgbench output:\n${out}\n${r.stderr}`);
  return { processed: Number(processed[1]), failed: Number(failed[1]) };
}

test('pgbench -i -s 1 through pgward', async () => {
  const r = await bench(['-i', '-s', '1', '-q']);
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: expect.stringContaining('done in') });
  const c = await pgClient({ ...DIRECT, database: DB });
  try {
    const { rows } = await c.query<{ n: string }>('SELECT count(*) AS n FROM pgbench_accounts');
    expect(rows[0]?.n).toBe('100000');
  } finally {
    await c.end();
  }
});

test.each([
  ['simple', ['-M', 'simple', '-c', '4', '-j', '2', '-t', '200']],
  ['extended', ['-M', 'extended', '-c', '4', '-j', '2', '-t', '200']],
  ['prepared', ['-M', 'prepared', '-c', '4', '-j', '2', '-t', '200']],
  ['new connection per transaction (-C)', ['-C', '-c', '4', '-j', '2', '-t', '200']],
])('pgbench %s: every transaction succeeds', async (_name, args) => {
  const r = await bench(args);
  expect({
    code: r.code,
    stderr: r.stderr.replace(/^(pgbench: .*|starting vacuum\.\.\.end\.)\n/gm, ''),
  }).toEqual({ code: 0, stderr: '' });
  const s = summary(r);
  const perClient = Number(args[args.indexOf('-t') + 1]);
  expect(s).toEqual({ processed: 4 * perClient, failed: 0 });
  console.log(`pgbench ${args.join(' ')}: ${/tps = [\d.]+ \([^)]*\)/.exec(r.stdout)?.[0] ?? r.stdout}`);
});
