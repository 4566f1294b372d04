/** What a session needs from the rest of the process: narrow interfaces, wired in main.ts. */
import type tls from 'node:tls';
import type { Logger } from 'pino';
import type { Classification, StatementInfo } from '../sql/types';
import type { LexicalRefusal } from '../sql/lexical';
import type { ConnectionInfo, Decision, InputDocument, PolicyEngine } from '../policy/types';
import type { ErrorCode } from '../errors';
import type { FrontendMessage } from '../protocol/frontend/frontend-message';
import type { ErrorResponse } from '../protocol/backend/error-response';
import type { CancelRegistry } from './cancel-registry';
import type { UpstreamOptions } from './upstream';

export interface SessionLimits {
  maxMessageBytes: number;
  loginTimeoutMs: number;
  maxSqlBytesInInput: number;
}

export interface ClientTls {
  /** null: SSLRequest is answered 'N'. */
  context: tls.SecureContext | null;
  /** Refuse clients that do not use TLS. */
  require: boolean;
  /** Ask for client certificates (verified against this CA) */
  requestCert: boolean;
  /**
   * DER of pgward's own certificate. SCRAM channel binding (tls-server-end-point) hashes the
   * server certificate, so it survives the gateway only when pgward presents the very certificate
   * the upstream server presents.
   */
  certDer: Buffer | null;
}

/** Everything observers get about one decision (audit, decision log, metrics, capture, shadow). */
export interface DecisionEvent {
  decision: Decision;
  input: InputDocument;
  /** The original frame bytes (never a PasswordMessage): `message.bytes`. */
  frame: Buffer;
  /** The message judged, as the session decoded it once (audit reads Bind values from it). */
  message?: FrontendMessage | undefined;
  connection: ConnectionInfo;
  /** The SQL as sent and its statements with texts (the input may carry none: input_options.sql_text). */
  original?: { sql: string; statements: StatementInfo[] } | undefined;
  /**
   * The gateway denied the message whatever the policy said (SQL text it refused to read, a Bind
   * of a statement it cannot name): shadow mode does not count a candidate's verdict on it.
   */
  gatewayDenied?: boolean;
}

/** A tripwire fired: the server reported a state that contradicts the startup judgement. */
export interface DivergenceEvent {
  code: ErrorCode;
  /** "server state diverged: …" */
  reason: string;
  connection: ConnectionInfo;
  /** The last decision of the session before the report (null: the report came at startup). */
  preceding: DecisionEvent | null;
}

export type FrameDirection = 'frontend' | 'backend';

export interface SessionObserver {
  /** Returns false when a denial or alert could not be recorded (audit sink failing). */
  onDecision(ev: DecisionEvent): boolean;
  onError(code: ErrorCode, connection: ConnectionInfo | null): void;
  /** For the audit log: a tripwire ended the session (onError counts it too). */
  onServerStateDiverged?(ev: DivergenceEvent): void;
  onConnectionOpened(): void;
  onConnectionClosed(outcome: string, connection: ConnectionInfo): void;
  onAuthenticated(connection: ConnectionInfo): void;
  /**
   * For capture: the StartupMessage packet (type 0) once the connection info is filled in, every
   * client frame after authentication (a judged one once judged, before it is forwarded), and the
   * backend's ReadyForQuery and ErrorResponse messages and its ParameterStatus of a lexical
   * setting (client_encoding, standard_conforming_strings). Never authentication messages ('p'
   * frames, Authentication*). Client frames come with `message`, the frame as the session decoded
   * it once, and a Query or Parse with `sql`, its text as the session decoded it, or, when the
   * session refused to read that text, `sql` '' and the `refusal`. A backend ErrorResponse comes
   * with `message`, as the session decoded it once.
   */
  onFrame?(
    direction: FrameDirection,
    frame: Buffer,
    connection: ConnectionInfo,
    message?: FrontendMessage | ErrorResponse,
    sql?: string,
    refusal?: LexicalRefusal,
  ): void;
  onBytes(direction: 'client_to_upstream' | 'upstream_to_client', n: number): void;
  onUpstreamConnectError(): void;
}

export interface SessionDeps {
  logger: Logger;
  engine: PolicyEngine;
  classify(sql: string): Classification;
  cancel: CancelRegistry;
  upstream: UpstreamOptions;
  clientTls: ClientTls;
  limits: SessionLimits;
  observer: SessionObserver;
  /** When true, a denial/alert that cannot be audited is denied (audit.fail_closed). */
  auditFailClosed: boolean;
  /** Called when a session ends, so the server can drop it from its set. */
  onClose(session: unknown): void;
  /** Process-wide message counters by type byte, read by the metrics (cheaper than a call per frame). */
  frameCounts: { frontend: Float64Array; backend: Float64Array };
  /** Connections counted while not yet authenticated (shared). */
  unauthenticated: { count: number; max: number };
  /** The statement log (statement_log.enabled); absent or disabled: nothing is tracked. */
  statementLog?: SessionStatementLog | undefined;
}

/**
 * What a session reports to the statement log (audit/statement-log.ts implements it; declared here
 * so session/ does not import audit/). See statement-tracker.ts for when each call is made.
 */
export interface SessionStatementLog {
  readonly enabled: boolean;
  statementStarted(s: {
    connection: ConnectionInfo;
    /** Query, Bind, FunctionCall, Parse. */
    message_type: string;
    sql: string | null;
    statements: readonly StatementInfo[];
    parse_error?: string | null;
    decision: Pick<Decision, 'id' | 'allow' | 'denials' | 'reasons' | 'alerts' | 'revision' | 'error_code'>;
  }): SessionStatementHandle;
}

export interface SessionStatementHandle {
  /** One CommandComplete answering it. */
  completed(c: { command_tag: string }): void;
  /** The ErrorResponse answering it. */
  failed(f: { sqlstate: string }): void;
  /** Writes the record; later calls do nothing. */
  finish(): void;
  /** Writes the record as `skipped`: the server skipped it after an earlier error (it never ran). */
  skipped(): void;
}
