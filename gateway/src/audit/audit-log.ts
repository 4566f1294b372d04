/**
 * Audit events: one JSON line per denied, alerted or shadow-disagreeing message, with the original
 * frame (bounded), redacted by configuration. Authentication frames are never recorded.
 */
import type { Logger } from 'pino';
import { ErrorCodes, type ErrorCode } from '../errors';
import type { Metrics } from '../metrics/metrics';
import { decodeParameter } from '../policy/input';
import type { Alert, BindParameter, ConnectionInfo, Decision, Denial, InputDocument } from '../policy/types';
import type { FrontendMessage } from '../protocol/frontend/frontend-message';
import type { StatementInfo } from '../sql/types';
import {
  eventConnection,
  eventParseError,
  eventVerdicts,
  eventSql,
  eventStatements,
  ruleIdsOf,
  type EventConnection,
  type EventStatement,
} from './events';
import { redactParameters, type RedactOptions } from './redact';
import { createSink, type FileSinkOptions, type LineSink, type SinkDeps } from './sink';

export type AuditKind = 'deny' | 'alert' | 'shadow';

export interface AuditOptions {
  sink: 'stdout' | 'file' | 'none';
  file: FileSinkOptions;
  redact: RedactOptions;
  fail_closed: boolean;
  max_frame_bytes: number;
}

export type AuditConnection = EventConnection;

/** What the session hands to `record()`. */
export interface AuditEvent {
  kind: AuditKind;
  decision_id: string;
  /** ISO 8601; defaults to now. */
  timestamp?: string;
  revision: string;
  connection: AuditConnection;
  /** PostgreSQL message name of the frame (`Query`, `Parse`, `Bind`, `StartupMessage`…). */
  message_type: string;
  /** SQL text of the message (Query/Parse), when there is one. */
  sql?: string | null;
  statements: readonly StatementInfo[];
  parse_error?: string | null;
  /** The decision's denials (rule, message, priority). */
  denials: readonly Denial[];
  reasons: readonly string[];
  alerts: readonly Alert[];
  error_code: ErrorCode | null;
  /** The full original frame, type byte and length included. */
  frame: Uint8Array | null;
  /** Bind parameters or FunctionCall arguments. */
  parameters?: readonly BindParameter[] | null;
}

export type AuditStatement = EventStatement;

export interface AuditFrame {
  /** base64 of the first max_frame_bytes bytes; null when redaction or the message type forbids it. */
  base64: string | null;
  length: number;
  truncated: boolean;
  /** true when the body was withheld (redaction, or an authentication message). */
  redacted: boolean;
}

/** One audit line, as written. */
export interface AuditRecord {
  event: 'audit';
  kind: AuditKind;
  decision_id: string;
  timestamp: string;
  revision: string;
  connection_id: string;
  connection: AuditConnection;
  message_type: string;
  sql: string | null;
  statements: AuditStatement[];
  parse_error: string | null;
  denials: Denial[];
  reasons: string[];
  alerts: Alert[];
  rule_ids: string[];
  error_code: ErrorCode | null;
  frame: AuditFrame | null;
  parameters: BindParameter[] | null;
  redaction: RedactOptions;
}

export interface AuditLog {
  /** false when the event was not written (the sink is failing); fail-closed callers then deny. */
  record(event: AuditEvent): boolean;
  healthy(): boolean;
  close(): Promise<void>;
}

export interface AuditDeps {
  metrics: Pick<Metrics, 'auditSinkErrorsTotal' | 'auditEventsTotal'>;
  logger?: Logger | undefined;
  stream?: SinkDeps['stream'];
  now?: () => number;
}

/**
 * Frontend messages whose type byte is 'p' carry passwords or authentication exchanges
 * (PasswordMessage, SASLInitialResponse, SASLResponse, GSSResponse). They are never recorded.
 */
const AUTH_TYPE_BYTE = 0x70;
const AUTH_MESSAGE_TYPES = new Set(['PasswordMessage', 'SASLInitialResponse', 'SASLResponse', 'GSSResponse']);
/** Messages whose bytes carry bound values rather than SQL text. */
const VALUE_MESSAGE_TYPES = new Set(['Bind', 'FunctionCall', 'CopyData']);

export function isAuthenticationMessage(messageType: string, frame: Uint8Array | null): boolean {
  return AUTH_MESSAGE_TYPES.has(messageType) || (frame !== null && frame[0] === AUTH_TYPE_BYTE);
}

function frameOf(event: AuditEvent, redact: RedactOptions, maxBytes: number): AuditFrame | null {
  const frame = event.frame;
  if (frame === null) return null;
  const withhold =
    isAuthenticationMessage(event.message_type, frame) ||
    redact.literals ||
    (redact.parameters && VALUE_MESSAGE_TYPES.has(event.message_type));
  const truncated = frame.length > maxBytes;
  if (withhold) return { base64: null, length: frame.length, truncated, redacted: true };
  const body = truncated ? frame.subarray(0, Math.max(0, maxBytes)) : frame;
  return {
    base64: Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('base64'),
    length: frame.length,
    truncated,
    redacted: false,
  };
}

/** Builds the record that `record()` writes. Pure; exported for tests and the replay tool. */
export function buildAuditRecord(
  event: AuditEvent,
  opts: Pick<AuditOptions, 'redact' | 'max_frame_bytes'>,
): AuditRecord {
  const { redact } = opts;
  const auth = isAuthenticationMessage(event.message_type, event.frame);
  const c = event.connection;
  const sql = auth ? null : (event.sql ?? null);
  const params = auth ? null : (event.parameters ?? null);
  return {
    event: 'audit',
    kind: event.kind,
    decision_id: event.decision_id,
    timestamp: event.timestamp ?? new Date().toISOString(),
    revision: event.revision,
    connection_id: c.id,
    connection: eventConnection(c),
    message_type: event.message_type,
    sql: eventSql(sql, redact),
    statements: eventStatements(event.statements, redact),
    parse_error: eventParseError(event.parse_error, redact),
    ...eventVerdicts(event, redact),
    rule_ids: ruleIdsOf(event),
    error_code: event.error_code,
    frame: frameOf(event, redact, opts.max_frame_bytes),
    parameters:
      params === null ? null : redact.parameters ? redactParameters(params) : params.map((p) => ({ ...p })),
    redaction: { parameters: redact.parameters, literals: redact.literals },
  };
}

/**
 * What the session knows beyond the input: its own connection (the input's may have no id:
 * input_options.connection_identity) and the SQL as sent (the input may have none: sql_text).
 */
export interface AuditContext {
  connection: ConnectionInfo;
  /** The message as the session decoded it once (a Bind's values are read from it). */
  message?: FrontendMessage | undefined;
  original?: { sql: string; statements: StatementInfo[] } | undefined;
}

/**
 * Maps the session's input document and decision to an audit event. With the session's context,
 * the event shows what the bundle left out of the input: the connection's id and port, the SQL
 * text, and Bind values (from the message the session decoded).
 */
export function auditEventFrom(
  kind: AuditKind,
  input: InputDocument,
  decision: Decision,
  frame: Buffer | null,
  ctx?: AuditContext,
): AuditEvent {
  const m = input.message;
  return {
    kind,
    decision_id: decision.id,
    revision: decision.revision,
    connection: ctx?.connection ?? input.connection,
    message_type: m.type,
    sql: ctx?.original?.sql ?? m.sql ?? m.statement?.sql ?? null,
    statements: ctx?.original?.statements ?? input.statements,
    parse_error: input.parse_error,
    denials: decision.denials,
    reasons: decision.reasons,
    alerts: decision.alerts,
    error_code: decision.error_code,
    frame,
    parameters: ctx?.message ? parametersAsSent(input, ctx.message) : (m.parameters ?? m.arguments ?? null),
  };
}

/** The input's parameters, with Bind values the bundle left out read from the decoded Bind. */
function parametersAsSent(input: InputDocument, message: FrontendMessage): BindParameter[] | null {
  const params = input.message.parameters ?? input.message.arguments ?? null;
  if (!params || message.name !== 'Bind' || !params.some((p) => p.encoding === 'omitted')) return params;
  const raw = message.params;
  return params.map((p, i) =>
    p.encoding === 'omitted' ? decodeParameter(p.type_oid, raw[i]?.format ?? 0, raw[i]?.value ?? null) : p,
  );
}

export function createAuditLog(opts: AuditOptions, deps: AuditDeps): AuditLog {
  const sink: LineSink = createSink(opts, {
    name: 'audit',
    metrics: deps.metrics,
    logger: deps.logger,
    ...(deps.stream ? { stream: deps.stream } : {}),
    ...(deps.now ? { now: deps.now } : {}),
  });
  return {
    record(event) {
      if (opts.sink === 'none') return true;
      let line: string;
      try {
        line = JSON.stringify(buildAuditRecord(event, opts)) + '\n';
      } catch (err) {
        deps.logger?.error(
          { code: ErrorCodes.AUDIT_SINK, err: (err as Error).message },
          'audit event not serializable',
        );
        deps.metrics.auditSinkErrorsTotal.inc();
        return false;
      }
      const ok = sink.write(line);
      if (ok) deps.metrics.auditEventsTotal.inc({ kind: event.kind });
      return ok;
    },
    healthy: () => sink.healthy(),
    close: () => sink.close(),
  };
}
