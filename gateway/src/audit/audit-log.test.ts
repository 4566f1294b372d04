import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { Registry } from 'prom-client';
import { createMetrics, type Metrics } from '../metrics/metrics';
import {
  auditEventFrom,
  buildAuditRecord,
  createAuditLog,
  type AuditEvent,
  type AuditOptions,
  type AuditRecord,
} from './audit-log';
import { loadSqlNormalizer, REDACTED } from './redact';
import { FILE_REOPEN_CHECK_MS } from './sink';
import { encodeBind, readBind } from '../protocol';
import { queryFrame, sampleConnection, sampleDecision, sampleInput, sampleStatement } from './test-fixtures';

const SQL = "DELETE FROM orders WHERE note = 'secret' AND id = 42";

function options(over: Partial<AuditOptions> = {}): AuditOptions {
  return {
    sink: 'stdout',
    file: { max_bytes: 1024 * 1024, max_files: 3 },
    redact: { parameters: false, literals: false },
    fail_closed: false,
    max_frame_bytes: 4096,
    ...over,
  };
}

function denyEvent(over: Partial<AuditEvent> = {}): AuditEvent {
  return {
    kind: 'deny',
    decision_id: 'd-1',
    timestamp: '2024-05-01T12:00:00.000Z',
    revision: 'rev-7',
    connection: sampleConnection(),
    message_type: 'Query',
    sql: SQL,
    statements: [sampleStatement()],
    parse_error: null,
    denials: [{ rule: 'no_writes', message: 'writes to orders are not allowed', priority: 10 }],
    reasons: ['writes to orders are not allowed'],
    alerts: [{ rule: 'bulk_delete', severity: 'high', message: 'delete on orders' }],
    error_code: null,
    frame: queryFrame(SQL),
    parameters: null,
    ...over,
  };
}

async function counterValue(m: Metrics, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = m.registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const got = await metric.get();
  const v = got.values.find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val));
  return v?.value ?? 0;
}

function capture(): { stream: PassThrough; lines: () => AuditRecord[] } {
  const stream = new PassThrough();
  const chunks: string[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c.toString('utf8')));
  return {
    stream,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as AuditRecord),
  };
}

beforeAll(() => loadSqlNormalizer());

describe('buildAuditRecord', () => {
  it('records every field as given when redaction is off', () => {
    const frame = queryFrame(SQL);
    const r = buildAuditRecord(denyEvent({ frame }), options());
    expect(r.kind).toBe('deny');
    expect(r.decision_id).toBe('d-1');
    expect(r.timestamp).toBe('2024-05-01T12:00:00.000Z');
    expect(r.revision).toBe('rev-7');
    expect(r.connection).toEqual({
      id: 'c-1',
      client_addr: '10.1.2.3',
      client_port: 51514,
      user: 'alice',
      database: 'app',
      application_name: 'psql',
      tls: { enabled: true, version: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', client_cert_subject: null },
    });
    expect(r.message_type).toBe('Query');
    expect(r.sql).toBe(SQL);
    expect(r.statements).toEqual([
      {
        command: 'DELETE',
        fingerprint: 'a1b2c3',
        sql: SQL,
        relations: [{ schema: 'public', name: 'orders', access: 'write' }],
      },
    ]);
    expect(r.parse_error).toBeNull();
    expect(r.reasons).toEqual(['writes to orders are not allowed']);
    expect(r.alerts).toEqual([{ rule: 'bulk_delete', severity: 'high', message: 'delete on orders' }]);
    expect(r.error_code).toBeNull();
    expect(r.frame).toEqual({
      base64: frame.toString('base64'),
      length: frame.length,
      truncated: false,
      redacted: false,
    });
    expect(Buffer.from(r.frame?.base64 ?? '', 'base64').equals(frame)).toBe(true);
    expect(r.parameters).toBeNull();
    expect(r.redaction).toEqual({ parameters: false, literals: false });
  });

  it('normalizes SQL and withholds the frame body when literals are redacted', () => {
    const frame = queryFrame(SQL);
    const r = buildAuditRecord(
      denyEvent({ frame, parse_error: `syntax error at or near "'secret'"` }),
      options({ redact: { parameters: false, literals: true } }),
    );
    expect(r.sql).toBe('DELETE FROM orders WHERE note = $1 AND id = $2');
    expect(r.statements[0]?.sql).toBe('DELETE FROM orders WHERE note = $1 AND id = $2');
    expect(r.statements[0]?.fingerprint).toBe('a1b2c3');
    expect(r.parse_error).toBe(`syntax error at or near ${REDACTED}`);
    expect(r.frame).toEqual({ base64: null, length: frame.length, truncated: false, redacted: true });
    expect(r.redaction).toEqual({ parameters: false, literals: true });
    expect(JSON.stringify(r)).not.toContain('secret');
  });

  it('redacts Bind parameters and the Bind frame when parameters are redacted', () => {
    const bindFrame = Buffer.from('B\0\0\0\x15\0s1\0\0\0\0\x01\0\0\0\x09card-4111', 'latin1');
    const params = [
      { type_oid: 25, format: 'text' as const, value: 'card-4111', encoding: 'decoded' as const },
    ];
    const off = buildAuditRecord(
      denyEvent({ message_type: 'Bind', frame: bindFrame, parameters: params }),
      options(),
    );
    expect(off.parameters).toEqual(params);
    expect(off.frame?.base64).toBe(bindFrame.toString('base64'));

    const on = buildAuditRecord(
      denyEvent({ message_type: 'Bind', frame: bindFrame, parameters: params }),
      options({ redact: { parameters: true, literals: false } }),
    );
    expect(on.parameters).toEqual([{ type_oid: 25, format: 'text', value: REDACTED, encoding: 'decoded' }]);
    expect(on.frame).toEqual({ base64: null, length: bindFrame.length, truncated: false, redacted: true });
    expect(JSON.stringify(on)).not.toContain('card-4111');
    expect(JSON.stringify(on)).not.toContain(Buffer.from('card-4111').toString('base64'));

    // A Query frame carries no bound values: kept when only parameters are redacted.
    const q = buildAuditRecord(denyEvent(), options({ redact: { parameters: true, literals: false } }));
    expect(q.frame?.redacted).toBe(false);
  });

  it('bounds the frame by max_frame_bytes', () => {
    const frame = queryFrame(SQL);
    const r = buildAuditRecord(denyEvent({ frame }), options({ max_frame_bytes: 10 }));
    expect(r.frame).toEqual({
      base64: frame.subarray(0, 10).toString('base64'),
      length: frame.length,
      truncated: true,
      redacted: false,
    });
  });

  it('never records a password frame', () => {
    const password = 'hunter2-very-secret';
    const body = Buffer.from(password + '\0', 'utf8');
    const frame = Buffer.concat([Buffer.from([0x70, 0, 0, 0, body.length + 4]), body]);
    for (const messageType of ['PasswordMessage', 'SASLResponse', 'Query']) {
      const r = buildAuditRecord(
        denyEvent({ message_type: messageType, frame, sql: password, parameters: null }),
        options(),
      );
      const json = JSON.stringify(r);
      expect(json).not.toContain(password);
      expect(json).not.toContain(frame.toString('base64'));
      expect(json).not.toContain(body.toString('base64').slice(0, 12));
      expect(r.frame).toEqual({ base64: null, length: frame.length, truncated: false, redacted: true });
      expect(r.sql).toBeNull();
    }
  });

  it('maps an input document and a decision', () => {
    const input = sampleInput();
    const e = auditEventFrom('alert', input, sampleDecision({ error_code: 'PGWARD_ERR_POLICY_EVAL' }), null);
    expect(e).toMatchObject({
      kind: 'alert',
      decision_id: 'd-1',
      revision: 'rev-7',
      message_type: 'Query',
      sql: input.message.sql,
      error_code: 'PGWARD_ERR_POLICY_EVAL',
      frame: null,
      parameters: null,
    });
  });
});

describe('createAuditLog', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgward-audit-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('writes one JSON line per event to stdout and counts it', async () => {
    const metrics = createMetrics(new Registry());
    const out = capture();
    const log = createAuditLog(options(), { metrics, stream: out.stream });
    expect(log.record(denyEvent())).toBe(true);
    expect(log.record(denyEvent({ kind: 'alert', decision_id: 'd-2' }))).toBe(true);
    await new Promise((r) => setImmediate(r));
    expect(out.lines().map((l) => [l.kind, l.decision_id])).toEqual([
      ['deny', 'd-1'],
      ['alert', 'd-2'],
    ]);
    expect(log.healthy()).toBe(true);
    expect(await counterValue(metrics, 'pgward_audit_events_total', { kind: 'deny' })).toBe(1);
    expect(await counterValue(metrics, 'pgward_audit_events_total', { kind: 'alert' })).toBe(1);
    await log.close();
  });

  it('marks the stdout sink unhealthy on a stream error', async () => {
    const metrics = createMetrics(new Registry());
    const out = capture();
    const log = createAuditLog(options(), { metrics, stream: out.stream });
    out.stream.emit('error', new Error('EPIPE'));
    expect(log.healthy()).toBe(false);
    expect(log.record(denyEvent())).toBe(false);
    expect(await counterValue(metrics, 'pgward_audit_sink_errors_total')).toBe(1);
    await new Promise((r) => setImmediate(r));
    expect(log.healthy()).toBe(true);
    await log.close();
  });

  it('writes nothing with the none sink', () => {
    const metrics = createMetrics(new Registry());
    const log = createAuditLog(options({ sink: 'none' }), { metrics });
    expect(log.record(denyEvent())).toBe(true);
    expect(log.healthy()).toBe(true);
  });

  it('rotates the file by size: path, path.1 … path.N', async () => {
    const metrics = createMetrics(new Registry());
    const file = path.join(dir, 'audit.log');
    const lineBytes = JSON.stringify(buildAuditRecord(denyEvent(), options())).length + 1;
    const log = createAuditLog(
      options({ sink: 'file', file: { path: file, max_bytes: lineBytes * 2, max_files: 2 } }),
      { metrics },
    );
    for (let i = 0; i < 7; i++) expect(log.record(denyEvent({ decision_id: `d-${i}` }))).toBe(true);
    await log.close();
    const ids = (p: string): string[] =>
      fs
        .readFileSync(p, 'utf8')
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as AuditRecord).decision_id);
    expect(ids(file)).toEqual(['d-6']);
    expect(ids(`${file}.1`)).toEqual(['d-4', 'd-5']);
    expect(ids(`${file}.2`)).toEqual(['d-2', 'd-3']);
    expect(fs.existsSync(`${file}.3`)).toBe(false);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  });

  it('counts sink failures, reports unhealthy, and recovers when a write succeeds', async () => {
    const metrics = createMetrics(new Registry());
    const sub = path.join(dir, 'sub');
    fs.mkdirSync(sub);
    const file = path.join(sub, 'audit.log');
    let now = 0;
    const log = createAuditLog(
      options({ sink: 'file', file: { path: file, max_bytes: 1 << 20, max_files: 1 } }),
      {
        metrics,
        now: () => now,
      },
    );
    expect(log.record(denyEvent())).toBe(true);
    fs.rmSync(sub, { recursive: true });
    now += FILE_REOPEN_CHECK_MS;
    expect(log.record(denyEvent())).toBe(false);
    expect(log.healthy()).toBe(false);
    expect(log.record(denyEvent())).toBe(false);
    expect(await counterValue(metrics, 'pgward_audit_sink_errors_total')).toBe(2);
    expect(await counterValue(metrics, 'pgward_audit_events_total', { kind: 'deny' })).toBe(1);

    fs.mkdirSync(sub);
    expect(log.record(denyEvent({ decision_id: 'after' }))).toBe(true);
    expect(log.healthy()).toBe(true);
    expect(fs.readFileSync(file, 'utf8')).toContain('"decision_id":"after"');
    await log.close();
  });

  it('fails when the path cannot be opened', async () => {
    const metrics = createMetrics(new Registry());
    const log = createAuditLog(
      options({ sink: 'file', file: { path: dir, max_bytes: 1024, max_files: 1 } }),
      {
        metrics,
      },
    );
    expect(log.record(denyEvent())).toBe(false);
    expect(log.healthy()).toBe(false);
    expect(await counterValue(metrics, 'pgward_audit_sink_errors_total')).toBe(1);
  });

  it('refuses a file sink without a path', () => {
    const metrics = createMetrics(new Registry());
    expect(() => createAuditLog(options({ sink: 'file' }), { metrics })).toThrow(/file.path/);
  });
});

describe('auditEventFrom with the session context', () => {
  it('shows what the bundle left out of the input: connection id and port, SQL text, Bind values', () => {
    const conn = sampleConnection();
    const statement = sampleStatement();
    const input = sampleInput({
      connection: { ...conn, id: '', client_port: 0 },
      message: {
        type: 'Bind',
        portal_name: '',
        statement: { name: 's', sql: '', statements: [{ ...statement, sql: '' }], parse_error: null },
        parameters: [{ type_oid: 23, format: 'text', value: null, encoding: 'omitted' }],
        truncated: false,
      },
      statements: [{ ...statement, sql: '' }],
    });
    const frame = encodeBind('', 's', [{ format: 0, value: Buffer.from('42') }]);
    const original = { sql: statement.sql, statements: [statement] };
    const message = readBind(frame);
    const ev = auditEventFrom('deny', input, sampleDecision(), frame, {
      connection: conn,
      original,
      message,
    });
    expect(ev.connection).toBe(conn);
    expect(ev.sql).toBe(statement.sql);
    expect(ev.statements).toEqual([statement]);
    expect(ev.parameters).toEqual([{ type_oid: 23, format: 'text', value: 42, encoding: 'decoded' }]);
    // Without it: the input as evaluated.
    const bare = auditEventFrom('deny', input, sampleDecision(), frame);
    expect(bare.connection.id).toBe('');
    expect(bare.parameters?.[0]?.encoding).toBe('omitted');
  });
});
