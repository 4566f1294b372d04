/**
 * Turning a deny decision into exactly what PostgreSQL would have sent.
 *
 * Query, Parse, Bind and FunctionCall denials are enforced in position by forwarding, in place of
 * the denied message, a *sentinel* that makes the server itself fail at that point: a Query or
 * Parse whose text is a unique token that cannot parse. PostgreSQL then does what it always does
 * on an error — fails the transaction block, skips the rest of an extended-protocol pipeline up
 * to Sync, rolls back its implicit transaction, sends one ReadyForQuery — and the session rewrites
 * that one ErrorResponse (recognised by the token) into the policy error.
 * https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-EXT-QUERY (error handling)
 */
import { randomBytes } from 'node:crypto';
import type { Decision } from '../policy/types';
import { encodeErrorResponse, encodeParse, encodeQuery, type ErrorFields } from '../protocol';

const prefix = randomBytes(6).toString('hex');
let counter = 0;

/** A token no client can predict; its presence in a server error marks the error as ours. */
export function newSentinelToken(): string {
  counter = (counter + 1) >>> 0;
  return `pgward_denied_${prefix}_${counter.toString(36)}`;
}

/** Replaces a denied Query or FunctionCall: the server answers ErrorResponse + ReadyForQuery. */
export function sentinelQuery(token: string): Buffer {
  return encodeQuery(token);
}

/**
 * Replaces a denied Parse (same statement name, so an unnamed one drops the previous unnamed
 * statement exactly as the real Parse would) or a denied Bind (a name nobody uses, so nothing
 * else changes). The syntax error is raised before any statement is stored.
 */
export function sentinelParse(token: string, statementName: string): Buffer {
  return encodeParse(statementName, token);
}

export function policyErrorFields(decision: Decision): ErrorFields {
  const first =
    decision.reasons[0] ??
    (decision.error_code
      ? `policy evaluation failed (${decision.error_code})`
      : 'no rule allowed this statement');
  const detail =
    (decision.reasons.length > 0 ? `Reasons: ${decision.reasons.join('; ')}. ` : '') +
    `Decision ${decision.id}.`;
  return {
    severity: 'ERROR',
    severityNonLocalized: 'ERROR',
    code: decision.sqlstate ?? '42501',
    message: `permission denied by policy: ${first}`,
    detail,
  };
}

export function encodePolicyError(decision: Decision): Buffer {
  return encodeErrorResponse(policyErrorFields(decision));
}

/** Startup denial: FATAL, 28000 unless the decision says otherwise; the connection then closes. */
export function encodeStartupDenied(decision: Decision): Buffer {
  const f = policyErrorFields(decision);
  return encodeErrorResponse({
    ...f,
    severity: 'FATAL',
    severityNonLocalized: 'FATAL',
    code: decision.sqlstate ?? '28000',
  });
}

export function encodeFatal(code: string, message: string, detail?: string): Buffer {
  const f: ErrorFields = { severity: 'FATAL', severityNonLocalized: 'FATAL', code, message };
  if (detail !== undefined) f.detail = detail;
  return encodeErrorResponse(f);
}
