/**
 * Fail closed. Bundles whose decision is undefined, not an object, has a non-boolean `allow`, or
 * throws: the fixtures of tests/fixtures/bundles are broken for every input, so they fail the
 * gateway's smoke test at load and no bundle is ever active (clients: FATAL 57P03, /readyz 503).
 * The fixtures of tests/policy/fixtures/late-* are well-formed for startups, SELECT and transaction control
 * messages (they pass the smoke test) and broken for everything else, so the same four failures
 * happen at run time, on live sessions: denied, with the stage code in the client's detail, the
 * log and the metrics.
 */
import path from 'node:path';
import { buildBundleFromDir, REPO, startGateway, type RunningGateway } from '../helpers/gateway';
import { connectAs, rejection, sleep, withDirect, type PgErrorLike, policySuite } from './policy-helpers';
import { startFakeUpstream, type FakeUpstream } from './fake-upstream';
import { pgClient } from '../helpers/pg-clients';
import { gatewayRuleId } from '../../gateway/src/policy/decision';
import type { ErrorCode } from '../../gateway/src/errors';

const DB = 'pgward_policy_failclosed';

const CASES = [
  { fixture: 'undefined', code: 'PGWARD_ERR_POLICY_UNDEFINED' },
  { fixture: 'not-object', code: 'PGWARD_ERR_POLICY_BAD_DECISION' },
  { fixture: 'bad-allow', code: 'PGWARD_ERR_POLICY_BAD_DECISION' },
  { fixture: 'throws', code: 'PGWARD_ERR_POLICY_EVAL' },
] as const;

policySuite(DB, { gateway: false });

async function metrics(gw: RunningGateway): Promise<string> {
  return (await gw.admin('/metrics')).text();
}

describe.each(CASES)('tests/fixtures/bundles/$fixture (broken for every input)', ({ fixture, code }) => {
  let fake: FakeUpstream;
  let gw: RunningGateway;
  beforeAll(async () => {
    fake = await startFakeUpstream();
    const bundle = await buildBundleFromDir(path.join(REPO, 'tests', 'fixtures', 'bundles', fixture));
    gw = await startGateway({ bundle, upstream: fake.address });
  }, 120_000);
  afterAll(async () => {
    await gw?.stop();
    await fake?.close();
  });

  test(`fails the smoke test with ${code}; no bundle active: FATAL 57P03, nothing forwarded, /readyz 503`, async () => {
    const failed = await gw.waitForLog((l) => l.code === 'PGWARD_ERR_BUNDLE_SMOKE');
    expect(String(failed.err)).toContain(code);
    const err = (await rejection(
      pgClient({ host: gw.host, port: gw.port, user: 'app', database: DB, connectTimeoutMs: 5000 }),
    )) as PgErrorLike;
    expect(err).toMatchObject({ severity: 'FATAL', code: '57P03' });
    await sleep(100);
    expect(fake.sessions()).toBe(0);
    const ready = await gw.admin('/readyz');
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ bundle: false });
    const m = await metrics(gw);
    expect(m).toMatch(/pgward_errors_total\{code="PGWARD_ERR_BUNDLE_SMOKE"\} 1/);
    expect(m).toMatch(
      /pgward_decisions_total\{outcome="deny",phase="startup",code="PGWARD_ERR_POLICY_NO_BUNDLE",rule="pgward.policy_no_bundle"\} [1-9]/,
    );
  });
});

describe.each(CASES)('tests/policy/fixtures/late-$fixture (broken for writes only)', ({ fixture, code }) => {
  let gw: RunningGateway;
  beforeAll(async () => {
    const bundle = await buildBundleFromDir(path.join(__dirname, 'fixtures', `late-${fixture}`));
    gw = await startGateway({ bundle });
  }, 120_000);
  afterAll(async () => {
    await gw?.stop();
  });

  test(`a live session: SELECT allowed, a write denied with ${code} (client detail, log, metrics), nothing written`, async () => {
    expect((await gw.admin('/readyz')).status).toBe(200);
    const c = await connectAs(gw, 'app', DB);
    try {
      expect((await c.client.query('SELECT count(*)::int AS n FROM t')).rows).toEqual([{ n: 10 }]);
      const simple = await rejection(c.client.query('DELETE FROM t WHERE id = 1'));
      const extended = await rejection(
        c.client.query({ text: 'UPDATE t SET v = $1 WHERE id = $2', values: [0, 1] }),
      );
      for (const err of [simple, extended]) {
        expect(err.code).toBe('42501');
        expect(err.message).toMatch(/^permission denied by policy: /);
        expect(`${err.message} ${err.detail ?? ''}`).toContain(code);
        expect(err.detail).toMatch(/Decision /);
      }
      expect(await c.status()).toBe('I');
      // Inside a transaction too.
      await c.client.query('BEGIN');
      expect((await rejection(c.client.query('INSERT INTO t VALUES (99, 9)'))).code).toBe('42501');
      expect(await c.status()).toBe('E');
      await c.client.query('ROLLBACK');
      expect((await c.client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await c.end();
    }
    const t = await withDirect(DB, (d) => d.query('SELECT count(*)::int AS n, sum(v)::int AS s FROM t'));
    expect(t.rows[0]).toEqual({ n: 10, s: 55 });
    const denied = await gw.waitForLog((l) => l.msg === 'denied' && l.code === code);
    expect(denied.type).toBe('Query');
    const m = await metrics(gw);
    expect(m).toMatch(
      new RegExp(
        `pgward_decisions_total\\{outcome="deny",phase="message",code="${code}",rule="${gatewayRuleId(code as ErrorCode)}"\\} [1-9]`,
      ),
    );
    expect(m).toMatch(new RegExp(`pgward_errors_total\\{code="${code}"\\} [1-9]`));
  });
});
