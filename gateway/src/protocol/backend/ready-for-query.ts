/** ReadyForQuery ('Z'): transaction status 'I' idle, 'T' in a transaction block, 'E' failed block. */
import { malformed } from '../errors';
import { MessageWriter } from '../writer';

export type TransactionStatus = 'I' | 'T' | 'E';

export interface ReadyForQuery {
  readonly name: 'ReadyForQuery';
  /** The original message (a view). */
  readonly bytes: Buffer;
  readonly status: TransactionStatus;
}

export function readReadyForQueryMessage(msg: Buffer): ReadyForQuery {
  return { name: 'ReadyForQuery', bytes: msg, status: readReadyForQuery(msg) };
}

export function readReadyForQuery(msg: Buffer): TransactionStatus {
  return readReadyForQueryAt(msg, 0, msg.length);
}

/**
 * The status of the ReadyForQuery at `source[start, end)` (header included), read in place; the
 * length word is BackendScanner's to check (it hands over `end` = start + length word + 1).
 */
export function readReadyForQueryAt(source: Buffer, start: number, end: number): TransactionStatus {
  if (end - start !== 6) throw malformed('ReadyForQuery: bad length');
  const c = source[start + 5] as number;
  if (c === 0x49) return 'I';
  if (c === 0x54) return 'T';
  if (c === 0x45) return 'E';
  throw malformed(`ReadyForQuery: bad status ${String.fromCharCode(c)}`);
}

export function encodeReadyForQuery(status: TransactionStatus): Buffer {
  return new MessageWriter(1).int8(status.charCodeAt(0)).message('Z');
}
