import { PassThrough } from 'node:stream';
import { Registry } from 'prom-client';
import { createMetrics } from '../metrics/metrics';
import {
  buildDecisionLogEntry,
  createDecisionLog,
  type DecisionLogEntry,
  type DecisionLogOptions,
} from './decision-log';
import { loadSqlNormalizer } from './redact';
import { sampleDecision, sampleInput } from './test-fixtures';

const base = { instanceId: 'i-1', version: '0.1.0' };
const noRedact = { parameters: false, literals: false };

function opts(over: Partial<DecisionLogOptions> = {}): DecisionLogOptions {
  return {
    enabled: true,
    sample_rate: 1,
    sink: 'stdout',
    file: { max_bytes: 1 << 20, max_files: 1 },
    ...over,
  };
}

function collect(stream: PassThrough): () => DecisionLogEntry[] {
  const chunks: string[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c.toString('utf8')));
  return () =>
    chunks
      .join('')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as DecisionLogEntry);
}

beforeAll(() => loadSqlNormalizer());

describe('buildDecisionLogEntry', () => {
  it('has the OPA decision log event shape', () => {
    const input = sampleInput();
    const entry = buildDecisionLogEntry(
      input,
      sampleDecision(),
      'pgward/decision',
      { ...base, redact: noRedact },
      new Date('2024-05-01T12:00:00.000Z'),
    );
    expect(Object.keys(entry).sort()).toEqual(
      [
        'bundles',
        'connection_id',
        'decision_id',
        'input',
        'labels',
        'metrics',
        'path',
        'result',
        'revision',
        'rule_ids',
        'timestamp',
      ].sort(),
    );
    expect(entry.decision_id).toBe('d-1');
    // The input's connection id unless the session's own is given (the input's may be "").
    expect(entry.connection_id).toBe(input.connection.id);
    const blanked = { ...input, connection: { ...input.connection, id: '' } };
    const withOwn = buildDecisionLogEntry(
      blanked,
      sampleDecision(),
      'p',
      { ...base, redact: noRedact },
      new Date(),
      'c-9',
    );
    expect(withOwn.connection_id).toBe('c-9');
    expect(withOwn.input.connection.id).toBe('');
    expect(entry.labels).toEqual({ app: 'pgward', id: 'i-1', version: '0.1.0' });
    expect(entry.bundles).toEqual({ pgward: { revision: 'rev-7' } });
    expect(entry.path).toBe('pgward/decision');
    expect(entry.input).toEqual(input);
    expect(entry.result).toEqual({
      allow: false,
      denials: [{ rule: 'no_writes', message: 'writes to orders are not allowed', priority: 10 }],
      reasons: ['writes to orders are not allowed'],
      alerts: [{ rule: 'bulk_delete', severity: 'high', message: 'delete on orders' }],
      sqlstate: null,
      session_parameters: {},
    });
    expect(entry.timestamp).toBe('2024-05-01T12:00:00.000Z');
    expect(entry.metrics).toEqual({ timer_rego_query_eval_ns: 123000 });
  });

  it('records fail-closed errors, an empty bundle set without a revision, and masked paths', () => {
    const entry = buildDecisionLogEntry(
      sampleInput(),
      sampleDecision({ revision: '', error_code: 'PGWARD_ERR_POLICY_NO_BUNDLE' }),
      'pgward/decision',
      { ...base, redact: { parameters: true, literals: true }, bundleName: 'main' },
    );
    expect(entry.error).toEqual({ code: 'PGWARD_ERR_POLICY_NO_BUNDLE' });
    expect(entry.bundles).toEqual({});
    expect(entry.masked).toEqual(['/input/message/sql', '/input/statements']);
    expect(entry.input.message.sql).toBe('DELETE FROM orders WHERE note = $1 AND id = $2');
    expect(JSON.stringify(entry)).not.toContain('secret');
  });
});

describe('createDecisionLog', () => {
  it('writes every decision at sample_rate 1 and counts entries', async () => {
    const metrics = createMetrics(new Registry());
    const stream = new PassThrough();
    const lines = collect(stream);
    const log = createDecisionLog(opts(), { ...base, redact: noRedact, metrics, stream });
    expect(log.log(sampleInput(), sampleDecision({ id: 'a' }), 'pgward/decision')).toBe(true);
    expect(log.log(sampleInput(), sampleDecision({ id: 'b', allow: true }), 'pgward/decision')).toBe(true);
    await new Promise((r) => setImmediate(r));
    expect(lines().map((e) => [e.decision_id, e.result.allow])).toEqual([
      ['a', false],
      ['b', true],
    ]);
    const got = await metrics.decisionLogEntriesTotal.get();
    expect(got.values[0]?.value).toBe(2);
    await log.close();
  });

  it('samples', async () => {
    const metrics = createMetrics(new Registry());
    const stream = new PassThrough();
    const lines = collect(stream);
    const draws = [0.1, 0.9, 0.2, 0.6];
    const log = createDecisionLog(opts({ sample_rate: 0.5 }), {
      ...base,
      redact: noRedact,
      metrics,
      stream,
      random: () => draws.shift() ?? 1,
    });
    for (const id of ['a', 'b', 'c', 'd']) log.log(sampleInput(), sampleDecision({ id }), 'pgward/decision');
    await new Promise((r) => setImmediate(r));
    expect(lines().map((e) => e.decision_id)).toEqual(['a', 'c']);
  });

  it('writes nothing when disabled and rejects a bad sample rate', () => {
    const metrics = createMetrics(new Registry());
    const stream = new PassThrough();
    const lines = collect(stream);
    const off = createDecisionLog(opts({ enabled: false }), { ...base, redact: noRedact, metrics, stream });
    expect(off.log(sampleInput(), sampleDecision(), 'pgward/decision')).toBe(true);
    expect(lines()).toEqual([]);
    expect(() => createDecisionLog(opts({ sample_rate: 2 }), { ...base, redact: noRedact, metrics })).toThrow(
      /sample_rate/,
    );
  });
});
