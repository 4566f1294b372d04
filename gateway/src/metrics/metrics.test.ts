import * as fs from 'node:fs';
import * as path from 'node:path';
import { Registry } from 'prom-client';
import { parse as parseYaml } from 'yaml';
import type { Decision } from '../policy/types';
import { createMetrics, LATENCY_BUCKETS, MAX_RULE_LABELS, type Metrics } from './metrics';

const ROOT = path.resolve(__dirname, '../../..');

function decision(over: Partial<Decision> = {}): Decision {
  return {
    id: 'd',
    allow: true,
    denials: [],
    reasons: [],
    alerts: [],
    sqlstate: null,
    session_parameters: {},
    revision: 'r1',
    error_code: null,
    eval_seconds: 0.00002,
    ...over,
  };
}

/** Touches every metric once, the way the gateway would. */
function touchAll(m: Metrics): void {
  m.connectionsActive.inc();
  m.connectionOpened.inc();
  m.connectionClosed('client_terminated');
  m.countFrame('frontend', 'Query');
  m.countFrame('backend', 'DataRow');
  m.countDecision(decision(), 'message');
  m.countDecision(
    decision({
      allow: false,
      error_code: 'PGWARD_ERR_POLICY_UNDEFINED',
      alerts: [{ rule: 'r', severity: 'high', message: 'm' }],
    }),
    'message',
  );
  m.countError('PGWARD_ERR_PROTOCOL_MALFORMED');
  m.sqlClassifySeconds.observe(0.00001);
  m.sqlCache.hit.inc();
  m.bundleActivated({
    revision: 'r1',
    source: 's',
    entrypoint: 'pgward/decision',
    loaded_at: '',
    opa_version: null,
  });
  m.bundleReloadFailed();
  m.upstreamConnectErrorsTotal.inc();
  m.bytes.client_to_upstream.inc(10);
  m.auditEventsTotal.inc({ kind: 'deny' });
  m.auditSinkErrorsTotal.inc();
  m.decisionLogEntriesTotal.inc();
  m.shadowDisagreementsTotal.inc();
  m.capturedFrames.inc();
  m.ready.set({ component: 'bundle' }, 1);
}

/** Names of the samples in Prometheus text exposition. */
function sampleNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/.exec(line);
    if (m?.[1]) names.add(m[1]);
  }
  return names;
}

function metricNamesIn(text: string): string[] {
  return [...new Set(text.match(/\bpgward_[a-z0-9_]+/g) ?? [])];
}

async function value(
  m: Metrics,
  name: string,
  labels: Record<string, string> = {},
): Promise<number | undefined> {
  const got = await m.registry.getSingleMetric(name)?.get();
  return got?.values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value;
}

describe('metrics', () => {
  it('declares the documented metrics with the pgward_ prefix, default process metrics included', async () => {
    const m = createMetrics();
    const names = sampleNames(await m.registry.metrics());
    for (const n of [
      'pgward_connections_active',
      'pgward_connections_opened_total',
      'pgward_connections_closed_total',
      'pgward_connections_max',
      'pgward_upstream_up',
      'pgward_admin_unauthorized_total',
      'pgward_decisions_total',
      'pgward_errors_total',
      'pgward_bundle_reloads_total',
      'pgward_bytes_total',
      'process_cpu_user_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_eventloop_lag_p99_seconds',
      'nodejs_heap_size_used_bytes',
    ]) {
      expect(names).toContain(n);
    }
    for (const n of names) expect(/^(pgward|process|nodejs)_/.test(n)).toBe(true);
  });

  it('has no gauge whose name ends in _total', async () => {
    const m = createMetrics(new Registry());
    const gauges = (await m.registry.getMetricsAsJSON()).filter((x) => String(x.type) === 'gauge');
    expect(gauges.length).toBeGreaterThan(10);
    for (const g of gauges) expect(g.name).not.toMatch(/_total$/);
  });

  it('counts opened and closed connections so that opened - closed = active', async () => {
    const m = createMetrics(new Registry());
    for (let i = 0; i < 5; i++) m.connectionOpened.inc();
    m.connectionClosed('rejected_limit');
    m.connectionClosed('client_terminated');
    m.connectionClosed('no_such_reason');
    const text = await m.registry.metrics();
    expect(text).toContain('pgward_connections_opened_total 5');
    expect(text).toContain('pgward_connections_closed_total{reason="rejected_limit"} 1');
    expect(text).toContain('pgward_connections_closed_total{reason="client_terminated"} 1');
    expect(text).toContain('pgward_connections_closed_total{reason="other"} 1');
    expect(text).toContain('pgward_connections_closed_total{reason="shutdown"} 0');
  });

  it('flushes hot-path counters at scrape time', async () => {
    const m = createMetrics(new Registry());
    m.bytes.client_to_upstream.inc(100);
    m.bytes.client_to_upstream.inc(23);
    m.bytes.upstream_to_client.inc(7);
    for (let i = 0; i < 3; i++) m.countFrame('backend', 'DataRow');
    m.countFrame('frontend', 'NoSuchMessage');
    const text = await m.registry.metrics();
    expect(text).toContain('pgward_bytes_total{direction="client_to_upstream"} 123');
    expect(text).toContain('pgward_bytes_total{direction="upstream_to_client"} 7');
    expect(text).toContain('pgward_frames_total{direction="backend",type="DataRow"} 3');
    expect(text).toContain('pgward_frames_total{direction="frontend",type="Unknown"} 1');
    m.bytes.upstream_to_client.inc(3);
    expect(await m.registry.metrics()).toContain('pgward_bytes_total{direction="upstream_to_client"} 10');
  });

  it('counts decisions by outcome, phase and code', async () => {
    const m = createMetrics(new Registry());
    m.countDecision(decision(), 'startup');
    m.countDecision(decision({ allow: false }), 'message');
    m.countDecision(decision({ allow: false, error_code: 'PGWARD_ERR_POLICY_EVAL' }), 'message');
    expect(await value(m, 'pgward_decisions_total', { outcome: 'allow', phase: 'startup', code: '' })).toBe(
      1,
    );
    expect(await value(m, 'pgward_decisions_total', { outcome: 'deny', phase: 'message', code: '' })).toBe(1);
    expect(
      await value(m, 'pgward_decisions_total', {
        outcome: 'deny',
        phase: 'message',
        code: 'PGWARD_ERR_POLICY_EVAL',
      }),
    ).toBe(1);
    expect(await value(m, 'pgward_errors_total', { code: 'PGWARD_ERR_POLICY_EVAL' })).toBe(0);
    expect(await value(m, 'pgward_policy_eval_seconds', {})).toBeDefined();
  });

  it('labels a denying decision with the rule id of its first denial, with bounded cardinality', async () => {
    const m = createMetrics(new Registry());
    const deny = (rule: string): Decision =>
      decision({
        allow: false,
        denials: [
          { rule, message: 'm', priority: 1 },
          { rule: 'second', message: 'm', priority: 2 },
        ],
      });
    m.countDecision(deny('unbounded_write'), 'message');
    m.countDecision(deny('unbounded_write'), 'message');
    m.countDecision(deny('custom.payroll_hours'), 'message');
    for (let i = 0; i < MAX_RULE_LABELS + 10; i++) m.countDecision(deny(`r${i}`), 'message');
    const count = (rule: string): Promise<number | undefined> =>
      value(m, 'pgward_decisions_total', { outcome: 'deny', phase: 'message', code: '', rule });
    expect(await count('unbounded_write')).toBe(2);
    expect(await count('custom.payroll_hours')).toBe(1);
    expect(await count('second')).toBeUndefined();
    // 2 ids seen first, then r0…r97 fill the 100 label values; the remaining 12 count as other.
    expect(await count(`r${MAX_RULE_LABELS - 3}`)).toBe(1);
    expect(await count(`r${MAX_RULE_LABELS - 2}`)).toBeUndefined();
    expect(await count('other')).toBe(12);
    const series = (await m.registry.getSingleMetric('pgward_decisions_total')!.get()).values;
    expect(new Set(series.map((v) => v.labels['rule'])).size).toBeLessThanOrEqual(MAX_RULE_LABELS + 2);
  });

  it('names a fail-closed deny without denials after its stage code', async () => {
    const m = createMetrics(new Registry());
    m.countDecision(decision({ allow: false, error_code: 'PGWARD_ERR_POLICY_UNDEFINED' }), 'message');
    expect(
      await value(m, 'pgward_decisions_total', {
        outcome: 'deny',
        code: 'PGWARD_ERR_POLICY_UNDEFINED',
        rule: 'pgward.policy_undefined',
      }),
    ).toBe(1);
  });

  it('counts an alert whose rule is not a rule id as other', async () => {
    const m = createMetrics(new Registry());
    m.countDecision(
      decision({ alerts: [{ rule: 'Bad Rule\n', severity: 'high', message: 'm' }] }),
      'message',
    );
    expect(await value(m, 'pgward_alerts_total', { rule: 'other', severity: 'high' })).toBe(1);
  });

  it('keeps exactly one pgward_bundle_info series: the active bundle', async () => {
    const m = createMetrics(new Registry());
    const info = { source: 'b.tar.gz', entrypoint: 'pgward/decision', loaded_at: '', opa_version: null };
    m.bundleActivated({ ...info, revision: 'r1' }, new Date(1_700_000_000_000));
    m.bundleActivated({ ...info, revision: 'r2' }, new Date(1_700_000_100_000));
    const got = await m.bundleInfo.get();
    expect(got.values).toEqual([
      { value: 1, labels: { revision: 'r2', source: 'b.tar.gz', entrypoint: 'pgward/decision' } },
    ]);
    expect(await value(m, 'pgward_bundle_reloads_total', { result: 'success' })).toBe(2);
    expect(await value(m, 'pgward_bundle_last_reload_success_timestamp_seconds')).toBe(1_700_000_100);
  });

  it('uses latency buckets from 1 µs to 10 ms', () => {
    expect(LATENCY_BUCKETS[0]).toBe(1e-6);
    expect(LATENCY_BUCKETS).toContain(1e-2);
  });

  it('has every metric that the dashboard and the alert rules query', async () => {
    const m = createMetrics(new Registry());
    touchAll(m);
    const exposed = sampleNames(await m.registry.metrics());
    const dashboard = fs.readFileSync(path.join(ROOT, 'deploy/grafana-dashboard.json'), 'utf8');
    const rules = fs.readFileSync(path.join(ROOT, 'deploy/prometheus-rules.yaml'), 'utf8');
    const exprs: string[] = [];
    const walk = (x: unknown): void => {
      if (Array.isArray(x)) x.forEach(walk);
      else if (x !== null && typeof x === 'object') {
        for (const [k, v] of Object.entries(x)) {
          if ((k === 'expr' || k === 'definition') && typeof v === 'string') exprs.push(v);
          else walk(v);
        }
      }
    };
    walk(JSON.parse(dashboard));
    walk(parseYaml(rules));
    expect(exprs.length).toBeGreaterThan(10);
    const used = metricNamesIn(exprs.join('\n'));
    expect(used.length).toBeGreaterThan(15);
    expect(used.filter((n) => !exposed.has(n))).toEqual([]);
    // Nothing outside the expressions names a metric that does not exist either.
    expect(metricNamesIn(dashboard + rules).filter((n) => !exposed.has(n))).toEqual([]);
  });
});
