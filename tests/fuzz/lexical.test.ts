/**
 * The bounded slice of the differential fuzzer (tests/fuzz/lexical-fuzz.ts) that `make test` runs;
 * `make fuzz` runs the same with FUZZ_RUNS=2000 and a fresh seed. FUZZ_SEED replays a run.
 */
import { Direct, fuzz, initFuzz } from './lexical-fuzz';
import { withDirect } from '../policy/policy-helpers';

const DB = `pgward_fuzz_${process.pid}`;
const RUNS = Number(process.env['FUZZ_RUNS'] ?? 60);
const SEED = Number(process.env['FUZZ_SEED'] ?? 20261204);
let direct: Direct;

beforeAll(async () => {
  await initFuzz();
  await withDirect('postgres', async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
    await c.query(`CREATE DATABASE ${DB} ENCODING 'UTF8' TEMPLATE template0`);
  });
  direct = await Direct.open('127.0.0.1', 5432, { user: 'postgres', database: DB });
  await direct.querySql('CREATE TABLE fz (a text); CREATE TABLE fz_gone (a int)');
}, 60_000);

afterAll(async () => {
  direct?.close();
  await withDirect('postgres', (c) => c.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`));
});

test(`pgward splits and classifies generated SQL as PostgreSQL runs it (seed ${SEED}, ${RUNS} texts per lexical state)`, async () => {
  const report = await fuzz(direct, SEED, RUNS);
  console.log(JSON.stringify({ ...report, mismatches: report.mismatches.length }));
  expect(report.mismatches.slice(0, 5)).toEqual([]);
  // The table the smuggles try to drop is still there (every text ran in a rolled-back transaction).
  expect((await direct.querySql('SELECT 1 FROM fz_gone')).error).toBeNull();
  // Enough texts were actually compared for the run to mean something.
  expect(report.agreed).toBeGreaterThan(report.runs / 4);
}, 600_000);

test('the fuzzer can fail: a reader that assumes UTF-8 and standard strings (pgward before issue 10) is caught', async () => {
  const naive = (bytes: Buffer) => ({ ok: true as const, sql: bytes.toString('utf8') });
  const report = await fuzz(direct, SEED, 20, naive);
  expect(report.mismatches.length).toBeGreaterThan(0);
  expect((await direct.querySql('SELECT 1 FROM fz_gone')).error).toBeNull();
}, 600_000);
