import { ErrorCodes, PgwardError, type ErrorCode } from '../errors';

/**
 * A violation of the wire protocol by the peer. The session answers FATAL 08P01 and closes, except
 * when `closeSilently` is set: PostgreSQL reports some startup-phase violations only to its log
 * (COMMERROR, e.g. "invalid length of startup packet") and closes the socket without a reply.
 */
export class ProtocolError extends PgwardError {
  constructor(
    code: ErrorCode,
    message: string,
    readonly closeSilently = false,
  ) {
    super(code, message);
    this.name = 'ProtocolError';
  }
}

export function malformed(what: string): ProtocolError {
  return new ProtocolError(ErrorCodes.PROTOCOL_MALFORMED, what);
}
