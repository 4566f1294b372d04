import { ErrorCodes, PgwardError, type ErrorCode } from '../errors';

/** A violation of the wire protocol by the peer. The session answers FATAL 08P01 and closes. */
export class ProtocolError extends PgwardError {
  constructor(code: ErrorCode, message: string) {
    super(code, message);
    this.name = 'ProtocolError';
  }
}

export function malformed(what: string): ProtocolError {
  return new ProtocolError(ErrorCodes.PROTOCOL_MALFORMED, what);
}
