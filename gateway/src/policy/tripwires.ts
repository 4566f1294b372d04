/**
 * Tripwires: server reports (ParameterStatus) that contradict what pgward judged at startup. The
 * session core calls checkTripwires for every ParameterStatus the server sends; a non-null result
 * ends the session at once (FATAL with the code, an audit record "server state diverged", a metric).
 *
 * PostgreSQL reports these settings (GUC_REPORT) at startup, before the first ReadyForQuery, and
 * again whenever their value changes, just before the ReadyForQuery that ends the cycle in which
 * they changed: https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-ASYNC
 */
import { ErrorCodes } from '../errors';
import type { ErrorCode } from '../errors';
import { applyParameterStatus } from '../sql/lexical';
import type { LexicalState } from '../sql/lexical';
import type { ServerState } from './types';

/** What pgward decided about the session when it let it start. */
export interface JudgedAtStartup {
  /** The user the startup decision judged (connection.user). */
  user: string;
  /** The startup decision made the session read-only (session_parameters default_transaction_read_only=on). */
  readOnly: boolean;
  /**
   * is_superuser as the server first reported it for this session (before the first
   * ReadyForQuery); null until then, when a report is the baseline rather than a change.
   */
  superuser: boolean | null;
}

export interface Tripwire {
  code: ErrorCode;
  reason: string;
}

/** The server state before any report: every field null. */
export function emptyServerState(): ServerState {
  return {
    session_authorization: null,
    is_superuser: null,
    default_transaction_read_only: null,
    in_hot_standby: null,
    client_encoding: null,
    standard_conforming_strings: null,
    server_encoding: null,
    server_version: null,
  };
}

/** PostgreSQL reports booleans as `on` / `off`. */
function reportedBool(value: string): boolean | null {
  if (value === 'on') return true;
  if (value === 'off') return false;
  return null;
}

/** The server state after one ParameterStatus (a new object; unknown names leave it as it is). */
export function updateServerState(state: Readonly<ServerState>, name: string, value: string): ServerState {
  switch (name) {
    case 'session_authorization':
    case 'client_encoding':
    case 'server_encoding':
    case 'server_version':
      return { ...state, [name]: value };
    case 'is_superuser':
    case 'default_transaction_read_only':
    case 'in_hot_standby':
    case 'standard_conforming_strings':
      return { ...state, [name]: reportedBool(value) };
    default:
      return { ...state };
  }
}

/** NAMEDATALEN - 1: the server truncates role names to 63 bytes (never inside a character). */
function truncateName(name: string): string {
  const bytes = Buffer.from(name, 'utf8');
  if (bytes.length <= 63) return name;
  let end = 63;
  while (end > 0 && ((bytes[end] as number) & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString('utf8');
}

/**
 * Whether this report contradicts the startup judgement; null when it does not. `lexical` is the
 * session's current lexical state, for client_encoding / standard_conforming_strings (a value
 * pgward cannot read SQL under is a divergence).
 */
export function checkTripwires(
  judged: Readonly<JudgedAtStartup>,
  name: string,
  value: string,
  lexical: Readonly<LexicalState>,
): Tripwire | null {
  switch (name) {
    case 'session_authorization':
      if (value !== truncateName(judged.user)) {
        return {
          code: ErrorCodes.SERVER_STATE_IDENTITY,
          reason: `server state diverged: session_authorization is now ${JSON.stringify(value)}, the session was judged as ${JSON.stringify(judged.user)}`,
        };
      }
      return null;
    case 'is_superuser': {
      const now = reportedBool(value);
      if (now === null || (judged.superuser !== null && now !== judged.superuser)) {
        return {
          code: ErrorCodes.SERVER_STATE_IDENTITY,
          reason: `server state diverged: is_superuser is now ${value} for a session judged as ${JSON.stringify(judged.user)} (${judged.superuser === true ? 'superuser' : 'not superuser'})`,
        };
      }
      return null;
    }
    case 'default_transaction_read_only':
      if (judged.readOnly && reportedBool(value) !== true) {
        return {
          code: ErrorCodes.SERVER_STATE_READ_ONLY,
          reason: `server state diverged: default_transaction_read_only is now ${value} for read-only user ${JSON.stringify(judged.user)}`,
        };
      }
      return null;
    case 'client_encoding':
    case 'standard_conforming_strings': {
      const r = applyParameterStatus(lexical, name, value);
      return r.ok ? null : { code: r.code, reason: `server state diverged: ${r.reason}` };
    }
    default:
      return null;
  }
}
