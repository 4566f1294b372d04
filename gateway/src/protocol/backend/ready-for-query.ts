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
  if (msg.length !== 6) throw malformed('ReadyForQuery: bad length');
  const s = String.fromCharCode(msg[5] as number);
  if (s !== 'I' && s !== 'T' && s !== 'E') throw malformed(`ReadyForQuery: bad status ${s}`);
  return s;
}

export function encodeReadyForQuery(status: TransactionStatus): Buffer {
  return new MessageWriter(1).int8(status.charCodeAt(0)).message('Z');
}
