/**
 * Stable failure codes: PGWARD_ERR_<STAGE>_<WHAT>. Used in logs and as the `code` metrics label.
 * Add new codes here only; never rename one (dashboards and alerts match on them).
 */
export const ErrorCodes = {
  CONFIG_INVALID: 'PGWARD_ERR_CONFIG_INVALID',
  PROTOCOL_FRAME_TOO_LARGE: 'PGWARD_ERR_PROTOCOL_FRAME_TOO_LARGE',
  PROTOCOL_BAD_LENGTH: 'PGWARD_ERR_PROTOCOL_BAD_LENGTH',
  PROTOCOL_STARTUP_INVALID: 'PGWARD_ERR_PROTOCOL_STARTUP_INVALID',
  PROTOCOL_UNKNOWN_MESSAGE: 'PGWARD_ERR_PROTOCOL_UNKNOWN_MESSAGE',
  PROTOCOL_MALFORMED: 'PGWARD_ERR_PROTOCOL_MALFORMED',
  PROTOCOL_UNEXPECTED_MESSAGE: 'PGWARD_ERR_PROTOCOL_UNEXPECTED_MESSAGE',
  PROTOCOL_DATA_AFTER_SSLREQUEST: 'PGWARD_ERR_PROTOCOL_DATA_AFTER_SSLREQUEST',
  PROTOCOL_UNSUPPORTED_VERSION: 'PGWARD_ERR_PROTOCOL_UNSUPPORTED_VERSION',
  /**
   * A startup packet whose length word is out of range (body < 4 or > 10,000 bytes), e.g. a
   * Terminate sent before the startup packet, or a CancelRequest of the wrong size. PostgreSQL logs
   * "invalid length of startup packet" (COMMERROR) and closes without a reply; so does pgward.
   */
  PROTOCOL_STARTUP_LENGTH: 'PGWARD_ERR_PROTOCOL_STARTUP_LENGTH',
  UPSTREAM_CONNECT: 'PGWARD_ERR_UPSTREAM_CONNECT',
  UPSTREAM_TLS: 'PGWARD_ERR_UPSTREAM_TLS',
  UPSTREAM_LOST: 'PGWARD_ERR_UPSTREAM_LOST',
  UPSTREAM_PROTOCOL: 'PGWARD_ERR_UPSTREAM_PROTOCOL',
  AUTH_CHANNEL_BINDING: 'PGWARD_ERR_AUTH_CHANNEL_BINDING',
  TLS_REQUIRED: 'PGWARD_ERR_TLS_REQUIRED',
  LIMIT_CLIENTS: 'PGWARD_ERR_LIMIT_CLIENTS',
  LIMIT_UNAUTHENTICATED: 'PGWARD_ERR_LIMIT_UNAUTHENTICATED',
  LOGIN_TIMEOUT: 'PGWARD_ERR_LOGIN_TIMEOUT',
  SHUTDOWN: 'PGWARD_ERR_SHUTDOWN',
  POLICY_NO_BUNDLE: 'PGWARD_ERR_POLICY_NO_BUNDLE',
  POLICY_UNDEFINED: 'PGWARD_ERR_POLICY_UNDEFINED',
  POLICY_BAD_DECISION: 'PGWARD_ERR_POLICY_BAD_DECISION',
  POLICY_EVAL: 'PGWARD_ERR_POLICY_EVAL',
  POLICY_INPUT: 'PGWARD_ERR_POLICY_INPUT',
  SQL_PARSE: 'PGWARD_ERR_SQL_PARSE',
  BUNDLE_LOAD: 'PGWARD_ERR_BUNDLE_LOAD',
  BUNDLE_SIGNATURE: 'PGWARD_ERR_BUNDLE_SIGNATURE',
  BUNDLE_SMOKE: 'PGWARD_ERR_BUNDLE_SMOKE',
  BUNDLE_FETCH: 'PGWARD_ERR_BUNDLE_FETCH',
  /**
   * The bundle's data declares `pgward.input_options`, which pgward no longer reads: the input
   * paths a policy reads are derived when the bundle is built (`metadata.pgward.input_paths`).
   */
  BUNDLE_INPUT_OPTIONS: 'PGWARD_ERR_BUNDLE_INPUT_OPTIONS',
  AUDIT_SINK: 'PGWARD_ERR_AUDIT_SINK',
  CAPTURE_SINK: 'PGWARD_ERR_CAPTURE_SINK',
  REPLAY_INPUT: 'PGWARD_ERR_REPLAY_INPUT',
  ADMIN_UNAUTHORIZED: 'PGWARD_ERR_ADMIN_UNAUTHORIZED',
  // Lexical truth and server-state tripwires (issue 10): SQL text pgward cannot read exactly as the
  // server will, startup settings that would create such a session, and server reports that
  // contradict what was judged.
  SQL_LEXICAL_ENCODING: 'PGWARD_ERR_SQL_LEXICAL_ENCODING',
  SQL_LEXICAL_STRING_SYNTAX: 'PGWARD_ERR_SQL_LEXICAL_STRING_SYNTAX',
  SQL_LEXICAL_CHANGING: 'PGWARD_ERR_SQL_LEXICAL_CHANGING',
  SQL_LEXICAL_STARTUP: 'PGWARD_ERR_SQL_LEXICAL_STARTUP',
  SERVER_STATE_IDENTITY: 'PGWARD_ERR_SERVER_STATE_IDENTITY',
  SERVER_STATE_READ_ONLY: 'PGWARD_ERR_SERVER_STATE_READ_ONLY',
  SERVER_STATE_LEXICAL: 'PGWARD_ERR_SERVER_STATE_LEXICAL',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** An error carrying a stable code. Only deliberate messages ever reach a client. */
export class PgwardError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'PgwardError';
  }
}

export function assertNever(x: never, what = 'value'): never {
  throw new Error(`unexpected ${what}: ${JSON.stringify(x)}`);
}
