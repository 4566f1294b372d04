import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { createMetrics } from '../metrics/metrics';
import { buildAuditRecord } from './audit-log';
import { buildDecisionLogEntry } from './decision-log';
import { rowsOfCommandTag, ruleIdsOf } from './events';
import { loadSqlNormalizer } from './redact';
import type { LineSink } from './sink';
import {
  createStatementLog,
  MAX_OPEN_STATEMENTS,
  type SessionRecord,
  type StatementLogOptions,
  type StatementRecord,
} from './statement-log';
import { sampleConnection, sampleDecision, sampleInput, sampleStatement, queryFrame } from './test-fixtures';
import { validateEvent } from '../../../tests/audit/event-schema';

const SECRET = 'secret';
const SQL = "DELETE FROM orders WHERE note = 'secret' AND id = 42";

function opts(over: Partial<StatementLogOptions> = {}): StatementLogOptions {
  return {
    enabled: true,
    sink: 'stdout',
    file: { max_bytes: 1 << 20, max_files: 1 },
    max_buffered_bytes: 1 << 20,
    redact: { parameters: true, literals: true },
    ...over,
  };
}

/** A statement log writing to a PassThrough, with a clock the test moves. */
function harness(over: Partial<StatementLogOptions> = {}) {
  const stream = new PassThrough();
  const chunks: string[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c.toString('utf8')));
  const clock = { t: Date.parse('2024-05-01T12:00:00.000Z') };
  const counts = { written: 0, dropped: 0 };
  const log = createStatementLog(opts(over), {
    metrics: createMetrics(),
    stream,
    now: () => clock.t,
    onWritten: (n) => (counts.written += n),
    onDropped: (n) => (counts.dropped += n),
  });
  const records = async (): Promise<(StatementRecord | SessionRecord)[]> => {
    await log.flush();
    return chunks
      .join('')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as StatementRecord | SessionRecord);
  };
  return { log, clock, counts, records };
}

const allowed = sampleDecision({ id: 'd-ok', allow: true, reasons: [], alerts: [] });

beforeAll(() => loadSqlNormalizer());

describe('statement log', () => {
  it('writes session start, each statement with its completion, and session end with totals', async () => {
    const { log, clock, records } = harness();
    const conn = sampleConnection();
    log.sessionStarted(conn);
    const h = log.statementStarted({
      connection: conn,
      message_type: 'Query',
      sql: SQL,
      statements: [sampleStatement()],
      decision: allowed,
    });
    clock.t += 12.5;
    h.completed({ command_tag: 'DELETE 3' });
    h.finish();
    h.finish(); // once only
    const denied = log.statementStarted({
      connection: conn,
      message_type: 'Query',
      sql: 'DROP TABLE orders',
      statements: [sampleStatement({ command: 'DROP', sql: 'DROP TABLE orders' })],
      decision: sampleDecision({ id: 'd-no', reasons: ['DROP is not allowed'], alerts: [] }),
    });
    denied.completed({ command_tag: 'DROP TABLE' }); // ignored: denied statements never run
    clock.t += 100;
    log.sessionEnded(conn.id, 'client_terminated');
    const recs = await records();
    expect(recs.map((r) => r.event)).toEqual(['session_start', 'statement', 'statement', 'session_end']);
    const [start, ok, no, end] = recs as [SessionRecord, StatementRecord, StatementRecord, SessionRecord];
    expect(start).toMatchObject({ connection_id: 'c-1', timestamp: '2024-05-01T12:00:00.000Z' });
    expect(start.connection).toEqual({
      id: 'c-1',
      client_addr: '10.1.2.3',
      client_port: 51514,
      user: 'alice',
      database: 'app',
      application_name: 'psql',
      tls: conn.tls,
    });
    expect(ok).toMatchObject({
      decision_id: 'd-ok',
      revision: 'rev-7',
      message_type: 'Query',
      allow: true,
      status: 'ok',
      command_tags: ['DELETE 3'],
      rows: 3,
      sqlstate: null,
      duration_ms: 12.5,
      rule_ids: [],
      redaction: { parameters: true, literals: true },
    });
    expect(ok.sql).not.toContain(SECRET);
    expect(ok.sql).toMatch(/note = \$1 AND id = \$2/);
    expect(ok.statements[0]!.sql).not.toContain(SECRET);
    expect(no).toMatchObject({
      decision_id: 'd-no',
      allow: false,
      status: 'denied',
      reasons: ['DROP is not allowed'],
      rule_ids: ['no_writes'],
      command_tags: [],
      rows: null,
    });
    expect(end).toMatchObject({
      outcome: 'client_terminated',
      duration_ms: 112.5,
      totals: { statements: 2, allowed: 1, denied: 1, errors: 0, rows: 3 },
    });
    for (const r of recs) validateEvent(r);
  });

  it('writes the SQL as sent when literal redaction is off', async () => {
    const { log, records } = harness({ redact: { parameters: true, literals: false } });
    log
      .statementStarted({
        connection: sampleConnection(),
        message_type: 'Query',
        sql: SQL,
        statements: [sampleStatement()],
        decision: allowed,
      })
      .finish();
    const [r] = (await records()) as [StatementRecord];
    expect(r.sql).toBe(SQL);
    expect(r.redaction.literals).toBe(false);
  });

  it('records a failure, sums the rows of a multi-statement Query, and finishes at ReadyForQuery', async () => {
    const { log, records } = harness();
    const conn = sampleConnection();
    const a = log.statementStarted({
      connection: conn,
      message_type: 'Query',
      sql: 'INSERT INTO t VALUES (1); INSERT INTO t VALUES (2), (3)',
      statements: [],
      decision: allowed,
    });
    a.completed({ command_tag: 'INSERT 0 1' });
    a.completed({ command_tag: 'INSERT 0 2' });
    const b = log.statementStarted({
      connection: conn,
      message_type: 'Bind',
      sql: 'SELECT * FROM nope',
      statements: [],
      decision: allowed,
    });
    b.failed({ sqlstate: '42P01' });
    log.readyForQuery(conn.id);
    log.sessionEnded(conn.id, 'client_terminated');
    const recs = (await records()).filter((r): r is StatementRecord => r.event === 'statement');
    expect(recs.map((r) => [r.status, r.rows, r.sqlstate])).toEqual([
      ['ok', 3, null],
      ['error', null, '42P01'],
    ]);
    const end = (await records()).at(-1) as SessionRecord;
    expect(end.totals).toEqual({ statements: 2, allowed: 2, denied: 0, errors: 1, rows: 3 });
  });

  it('writes statements still open at session end as incomplete', async () => {
    const { log, records } = harness();
    const conn = sampleConnection();
    log.statementStarted({
      connection: conn,
      message_type: 'Query',
      sql: 'SELECT 1',
      statements: [],
      decision: allowed,
    });
    log.sessionEnded(conn.id, 'upstream_closed');
    const [r] = (await records()) as [StatementRecord];
    expect(r).toMatchObject({ status: 'incomplete', duration_ms: null });
    validateEvent(r);
  });

  it('abandon() writes the record at once as incomplete and keeps nothing open', async () => {
    const { log, records } = harness();
    const conn = sampleConnection();
    const h = log.statementStarted({
      connection: conn,
      message_type: 'Query',
      sql: 'SELECT 1',
      statements: [],
      decision: allowed,
    });
    h.abandon();
    h.completed({ command_tag: 'SELECT 1' }); // too late: ignored
    const [r] = (await records()) as [StatementRecord];
    expect(r).toMatchObject({ status: 'incomplete', duration_ms: null, command_tags: [] });
    log.sessionEnded(conn.id, 'client_terminated');
    const end = (await records()).at(-1) as SessionRecord;
    expect(end.totals).toMatchObject({ statements: 1, allowed: 1 });
  });

  it('bounds the statements kept open per session', async () => {
    const { log, records } = harness({ max_buffered_bytes: 64 << 20 });
    const conn = sampleConnection();
    for (let i = 0; i <= MAX_OPEN_STATEMENTS; i++)
      log.statementStarted({
        connection: conn,
        message_type: 'Bind',
        sql: 'SELECT 1',
        statements: [],
        decision: allowed,
      });
    const recs = await records();
    expect(recs).toHaveLength(1);
    expect(recs[0]).toMatchObject({ status: 'incomplete' });
    expect(log.stats().open_sessions).toBe(1);
  });

  it('drops and counts records beyond the queue bound without blocking the caller', async () => {
    const { log, counts, records } = harness({ max_buffered_bytes: 4096 });
    const conn = sampleConnection();
    for (let i = 0; i < 100; i++)
      log
        .statementStarted({
          connection: conn,
          message_type: 'Query',
          sql: 'SELECT 1',
          statements: [],
          decision: allowed,
        })
        .finish();
    // Nothing was written yet: the caller only queued.
    expect(counts.written).toBe(0);
    const recs = await records();
    expect(counts.dropped).toBeGreaterThan(0);
    expect(recs).toHaveLength(counts.written);
    expect(counts.written + counts.dropped).toBe(100);
    expect(log.stats()).toMatchObject({ written: counts.written, dropped: counts.dropped });
  });

  it('counts a batch the sink refused as dropped', async () => {
    const failing: LineSink = { write: () => false, healthy: () => false, close: () => Promise.resolve() };
    let dropped = 0;
    const log = createStatementLog(opts(), {
      metrics: createMetrics(),
      sink: failing,
      onDropped: (n) => (dropped += n),
    });
    log.sessionStarted(sampleConnection());
    await log.flush();
    expect(dropped).toBe(1);
  });

  it('writes to a file sink', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgward-stmt-'));
    const file = path.join(dir, 'statements.log');
    const log = createStatementLog(
      opts({ sink: 'file', file: { path: file, max_bytes: 1 << 20, max_files: 1 } }),
      {
        metrics: createMetrics(),
      },
    );
    log.sessionStarted(sampleConnection());
    await log.close();
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
    expect(JSON.parse(lines[0]!)).toMatchObject({ event: 'session_start' });
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('does nothing when disabled', async () => {
    const log = createStatementLog(opts({ enabled: false }), { metrics: createMetrics() });
    log.sessionStarted(sampleConnection());
    log
      .statementStarted({
        connection: sampleConnection(),
        message_type: 'Query',
        sql: 'x',
        statements: [],
        decision: allowed,
      })
      .finish();
    await log.flush();
    expect(log.enabled).toBe(false);
    expect(log.stats().written).toBe(0);
  });
});

/** The same denial as an audit event, a decision log entry and a statement record. */
async function threeRecords(
  decision: ReturnType<typeof sampleDecision>,
  sql: string | null,
  redact: { parameters: boolean; literals: boolean },
) {
  const statements = sql === null ? [] : [sampleStatement()];
  const audit = buildAuditRecord(
    {
      kind: 'deny',
      decision_id: decision.id,
      revision: decision.revision,
      connection: sampleConnection(),
      message_type: 'Query',
      sql,
      statements,
      denials: decision.denials,
      reasons: decision.reasons,
      alerts: decision.alerts,
      error_code: null,
      frame: sql === null ? null : queryFrame(sql),
    },
    { redact, max_frame_bytes: 1024 },
  );
  const entry = buildDecisionLogEntry(sampleInput(), decision, 'pgward/decision', {
    redact,
    instanceId: 'i',
    version: '0.1.0',
  });
  const { log, records } = harness({ redact });
  log.statementStarted({ connection: sampleConnection(), message_type: 'Query', sql, statements, decision });
  const [stmt] = (await records()) as [StatementRecord];
  return { audit, entry, stmt };
}

describe('shared event fields', () => {
  it('audit events, statement records and decision log entries name the same facts alike', async () => {
    const { audit, entry, stmt } = await threeRecords(sampleDecision(), SQL, {
      parameters: true,
      literals: true,
    });
    for (const r of [audit, entry, stmt]) {
      validateEvent(r);
      expect(r).toMatchObject({
        decision_id: 'd-1',
        revision: 'rev-7',
        connection_id: 'c-1',
        rule_ids: ['no_writes', 'bulk_delete'],
      });
      expect(typeof r.timestamp).toBe('string');
      expect(JSON.stringify(r)).not.toContain(SECRET);
    }
    expect(audit.sql).toBe(stmt.sql);
    expect(audit.statements).toEqual(stmt.statements);
    expect(audit.connection).toEqual(stmt.connection);
  });
});

describe("a parser error's quoted token in denials, reasons and alerts", () => {
  // The shipped parse_error denial repeats the parser's message, which quotes the client's text.
  const quoted = `SQL could not be parsed: unterminated quoted string at or near "'${SECRET}"`;
  const decision = sampleDecision({
    reasons: [quoted],
    alerts: [{ rule: 'odd', severity: 'low', message: quoted }],
  });
  async function records(literals: boolean): Promise<unknown[]> {
    const { audit, entry, stmt } = await threeRecords(decision, null, { parameters: literals, literals });
    return [audit, entry, stmt];
  }

  it('is redacted in the audit event, the decision log entry and the statement record', async () => {
    for (const r of await records(true)) {
      expect(JSON.stringify(r)).not.toContain(SECRET);
      expect(JSON.stringify(r)).toContain('at or near [REDACTED]');
    }
  });

  it('is kept with literal redaction off', async () => {
    for (const r of await records(false)) expect(JSON.stringify(r)).toContain(`'${SECRET}`);
  });
});

describe('rule ids', () => {
  it("lists the denials' rule ids, then the alerts', once each; a stage-code deny is named after its code", () => {
    expect(
      ruleIdsOf({
        denials: [{ rule: 'read_only' }, { rule: 'no_drop' }, { rule: 'read_only' }],
        alerts: [{ rule: 'bulk_read' }, { rule: 'no_drop' }],
      }),
    ).toEqual(['read_only', 'no_drop', 'bulk_read']);
    expect(ruleIdsOf({ denials: [], alerts: [], error_code: 'PGWARD_ERR_POLICY_UNDEFINED' })).toEqual([
      'pgward.policy_undefined',
    ]);
  });

  it('reads rows from command tags', () => {
    expect(rowsOfCommandTag('INSERT 0 5')).toBe(5);
    expect(rowsOfCommandTag('SELECT 3')).toBe(3);
    expect(rowsOfCommandTag('UPDATE 0')).toBe(0);
    expect(rowsOfCommandTag('COPY 12')).toBe(12);
    expect(rowsOfCommandTag('MERGE 2')).toBe(2);
    expect(rowsOfCommandTag('CREATE TABLE')).toBeNull();
    expect(rowsOfCommandTag('BEGIN')).toBeNull();
  });
});
