/**
 * The statement log (`statement_log.enabled`): one JSON line per statement a session ran, allowed
 * or denied — who, where, when, the SQL as sent (redacted by `audit.redact`), its classification,
 * the decision id and rule ids, the command tags and rows from CommandComplete, the SQLSTATE of a
 * failure and the time to completion — and one line when a session starts and ends, with totals.
 * Separate from the policy input: what is logged does not depend on what the bundle reads.
 *
 * The session core reports through a narrow event API (docs/audit.md, "Statement log"):
 *   sessionStarted(connection)                           after AuthenticationOk
 *   statementStarted({connection, message_type, sql, statements, decision}) → handle
 *     for each judged Query, Bind (the statement it binds), FunctionCall and denied Parse
 *   handle.completed({command_tag})   each CommandComplete that answers it
 *   handle.failed({sqlstate})         the ErrorResponse that answers it
 *   handle.finish()                   when nothing more answers it (or readyForQuery(id))
 *   handle.skipped()                  the server skipped it after an earlier error
 *   sessionEnded(connection_id, outcome)
 * Writing is bounded and non-blocking (buffered-writer.ts): a full queue drops records and counts them.
 */
import type { Logger } from 'pino';
import { ErrorCodes } from '../errors';
import type { Alert, ConnectionInfo, Decision, Denial } from '../policy/types';
import type { StatementInfo } from '../sql/types';
import { createBufferedWriter, type BufferedWriterStats } from './buffered-writer';
import {
  eventConnection,
  eventParseError,
  eventVerdicts,
  eventSql,
  eventStatements,
  rowsOfCommandTag,
  ruleIdsOf,
  type EventConnection,
  type EventStatement,
} from './events';
import type { RedactOptions } from './redact';
import { createSink, type FileSinkOptions, type LineSink, type SinkDeps } from './sink';

export interface StatementLogOptions {
  enabled: boolean;
  sink: 'stdout' | 'file';
  file: FileSinkOptions;
  /** Queue bound; records beyond it are dropped and counted. */
  max_buffered_bytes: number;
  /** The audit section's redaction settings. */
  redact: RedactOptions;
}

export interface StatementLogDeps {
  /** Counters: records written, records dropped, sink errors. */
  onWritten?(n: number): void;
  onDropped?(n: number): void;
  metrics: SinkDeps['metrics'];
  logger?: Logger | undefined;
  stream?: SinkDeps['stream'];
  /** Milliseconds (fractional allowed); default performance.now()-based wall clock. */
  now?: () => number;
  schedule?(fn: () => void): void;
  /** For tests: a sink of one's own. */
  sink?: LineSink;
}

/** Outcome of a statement record. */
export type StatementStatus = 'ok' | 'error' | 'denied' | 'skipped' | 'incomplete';

export interface StatementRecord {
  event: 'statement';
  timestamp: string;
  connection_id: string;
  connection: EventConnection;
  decision_id: string;
  revision: string;
  message_type: string;
  sql: string | null;
  statements: EventStatement[];
  parse_error: string | null;
  allow: boolean;
  denials: Denial[];
  reasons: string[];
  alerts: Alert[];
  rule_ids: string[];
  error_code: string | null;
  status: StatementStatus;
  command_tags: string[];
  /** Sum of the counts in the command tags; null when none carried one. */
  rows: number | null;
  sqlstate: string | null;
  /** From the decision to the last response (or to the denial); null when incomplete. */
  duration_ms: number | null;
  redaction: RedactOptions;
}

export interface SessionTotals {
  statements: number;
  allowed: number;
  denied: number;
  errors: number;
  rows: number;
}

export interface SessionRecord {
  event: 'session_start' | 'session_end';
  timestamp: string;
  connection_id: string;
  connection: EventConnection;
  /** session_end: how the session ended (client_terminated, startup_denied, …). */
  outcome?: string;
  /** session_end: milliseconds since session_start. */
  duration_ms?: number;
  totals?: SessionTotals;
}

export interface StatementStart {
  connection: ConnectionInfo | EventConnection;
  /** The PostgreSQL message name: Query, Bind, FunctionCall, Parse. */
  message_type: string;
  /** The SQL as sent (a Bind: the SQL of the statement it binds); null for FunctionCall. */
  sql: string | null;
  statements: readonly StatementInfo[];
  parse_error?: string | null;
  decision: Pick<Decision, 'id' | 'allow' | 'denials' | 'reasons' | 'alerts' | 'revision' | 'error_code'>;
}

export interface StatementHandle {
  /** One CommandComplete answering this statement (a multi-statement Query gets several). */
  completed(c: { command_tag: string }): void;
  /** The ErrorResponse answering it. */
  failed(f: { sqlstate: string }): void;
  /** Writes the record; later calls do nothing. */
  finish(): void;
  /** Writes the record as `skipped`: the server skipped it after an earlier error, it never ran. */
  skipped(): void;
  /** Writes the record as `incomplete` now: the caller will report nothing more about it. */
  abandon(): void;
}

export interface StatementLog {
  readonly enabled: boolean;
  sessionStarted(connection: ConnectionInfo | EventConnection): void;
  statementStarted(s: StatementStart): StatementHandle;
  /** ReadyForQuery: every statement of the session still open is finished. */
  readyForQuery(connectionId: string): void;
  /** Open statements are written as `incomplete`, then the session_end record. */
  sessionEnded(connectionId: string, outcome: string): void;
  stats(): BufferedWriterStats & { open_sessions: number };
  flush(): Promise<void>;
  close(): Promise<void>;
}

const NOOP_HANDLE: StatementHandle = {
  completed: () => undefined,
  failed: () => undefined,
  finish: () => undefined,
  skipped: () => undefined,
  abandon: () => undefined,
};

/** Statements kept open per session before the oldest is written as `incomplete` (bounds memory). */
export const MAX_OPEN_STATEMENTS = 1024;

interface Open {
  record: StatementRecord;
  started: number;
  done: boolean;
}

interface SessionState {
  connection: EventConnection;
  started: number;
  totals: SessionTotals;
  open: Open[];
}

export function createStatementLog(opts: StatementLogOptions, deps: StatementLogDeps): StatementLog {
  if (!opts.enabled) {
    return {
      enabled: false,
      sessionStarted: () => undefined,
      statementStarted: () => NOOP_HANDLE,
      readyForQuery: () => undefined,
      sessionEnded: () => undefined,
      stats: () => ({ written: 0, dropped: 0, queued_bytes: 0, open_sessions: 0 }),
      flush: () => Promise.resolve(),
      close: () => Promise.resolve(),
    };
  }
  const sink =
    deps.sink ??
    createSink(opts, {
      name: 'statement_log',
      metrics: deps.metrics,
      logger: deps.logger,
      ...(deps.stream ? { stream: deps.stream } : {}),
    });
  const writer = createBufferedWriter(sink, opts.max_buffered_bytes, {
    ...(deps.onWritten ? { onWritten: deps.onWritten } : {}),
    onDropped: (n) => {
      deps.onDropped?.(n);
      if (!dropping) {
        dropping = true;
        deps.logger?.warn(
          { code: ErrorCodes.AUDIT_SINK, log: 'statement_log' },
          'statement log records dropped (queue full or sink failing)',
        );
      }
    },
    ...(deps.schedule ? { schedule: deps.schedule } : {}),
  });
  let dropping = false;
  const now = deps.now ?? (() => performance.timeOrigin + performance.now());
  const sessions = new Map<string, SessionState>();
  const redact = opts.redact;

  const write = (rec: StatementRecord | SessionRecord): void => {
    let line: string;
    try {
      line = JSON.stringify(rec) + '\n';
    } catch {
      deps.metrics.auditSinkErrorsTotal.inc();
      return;
    }
    if (writer.push(line)) dropping = false;
  };

  const session = (c: ConnectionInfo | EventConnection): SessionState => {
    let s = sessions.get(c.id);
    if (!s) {
      s = {
        connection: eventConnection(c),
        started: now(),
        totals: { statements: 0, allowed: 0, denied: 0, errors: 0, rows: 0 },
        open: [],
      };
      sessions.set(c.id, s);
    }
    return s;
  };

  const finish = (s: SessionState, o: Open, status?: StatementStatus): void => {
    if (o.done) return;
    o.done = true;
    const r = o.record;
    if (status !== undefined) r.status = status;
    r.duration_ms =
      r.status === 'incomplete' || r.status === 'skipped' ? null : Math.max(0, round3(now() - o.started));
    if (r.status === 'error') s.totals.errors++;
    if (r.rows !== null) s.totals.rows += r.rows;
    const i = s.open.indexOf(o);
    if (i >= 0) s.open.splice(i, 1);
    write(r);
  };

  return {
    enabled: true,
    sessionStarted(c) {
      const s = session(c);
      write({
        event: 'session_start',
        timestamp: new Date(s.started).toISOString(),
        connection_id: c.id,
        connection: s.connection,
      });
    },
    statementStarted(ev) {
      const s = session(ev.connection);
      const d = ev.decision;
      const t = now();
      s.totals.statements++;
      if (d.allow) s.totals.allowed++;
      else s.totals.denied++;
      const o: Open = {
        started: t,
        done: false,
        record: {
          event: 'statement',
          timestamp: new Date(t).toISOString(),
          connection_id: ev.connection.id,
          connection: s.connection,
          decision_id: d.id,
          revision: d.revision,
          message_type: ev.message_type,
          sql: eventSql(ev.sql, redact),
          statements: eventStatements(ev.statements, redact),
          parse_error: eventParseError(ev.parse_error, redact),
          allow: d.allow,
          ...eventVerdicts(d, redact),
          rule_ids: ruleIdsOf(d),
          error_code: d.error_code,
          status: d.allow ? 'ok' : 'denied',
          command_tags: [],
          rows: null,
          sqlstate: null,
          duration_ms: null,
          redaction: { parameters: redact.parameters, literals: redact.literals },
        },
      };
      if (!d.allow) {
        // Never reaches the server: the record is complete now.
        finish(s, o);
        return NOOP_HANDLE;
      }
      s.open.push(o);
      if (s.open.length > MAX_OPEN_STATEMENTS) finish(s, s.open[0]!, 'incomplete');
      return {
        completed({ command_tag }) {
          if (o.done) return;
          o.record.command_tags.push(command_tag);
          const n = rowsOfCommandTag(command_tag);
          if (n !== null) o.record.rows = (o.record.rows ?? 0) + n;
        },
        failed({ sqlstate }) {
          if (o.done) return;
          o.record.status = 'error';
          o.record.sqlstate = sqlstate;
        },
        finish: () => finish(s, o),
        skipped: () => finish(s, o, 'skipped'),
        abandon: () => finish(s, o, 'incomplete'),
      };
    },
    readyForQuery(id) {
      const s = sessions.get(id);
      if (!s) return;
      for (const o of [...s.open]) finish(s, o);
    },
    sessionEnded(id, outcome) {
      const s = sessions.get(id);
      if (!s) return;
      for (const o of [...s.open]) finish(s, o, 'incomplete');
      sessions.delete(id);
      const t = now();
      write({
        event: 'session_end',
        timestamp: new Date(t).toISOString(),
        connection_id: id,
        connection: s.connection,
        outcome,
        duration_ms: Math.max(0, round3(t - s.started)),
        totals: { ...s.totals },
      });
    },
    stats: () => ({ ...writer.stats(), open_sessions: sessions.size }),
    flush: () => writer.flush(),
    close: () => writer.close(),
  };
}

function round3(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
