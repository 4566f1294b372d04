/**
 * BackendKeyData ('K'): process id and secret key for CancelRequest. The key is 4 bytes in
 * protocol 3.0 and variable length (up to 256 bytes) in 3.2.
 */
import { malformed } from '../errors';
import { MAX_CANCEL_KEY_BYTES } from '../limits';
import { BodyReader } from '../reader';
import { MessageWriter } from '../writer';

export interface BackendKeyData {
  readonly name: 'BackendKeyData';
  /** The original message (a view). */
  readonly bytes: Buffer;
  readonly processId: number;
  readonly secretKey: Buffer;
}

/**
 * @param protocolMinor  the negotiated minor version when known: below 2 (protocol 3.0) the key is
 *   exactly 4 bytes, as libpq reads it (an Int32, then the message must end); from 3.2 on, 4 to 256.
 */
export function readBackendKeyData(msg: Buffer, protocolMinor?: number): BackendKeyData {
  const r = new BodyReader(msg, 5);
  const processId = r.int32();
  const keyLength = r.remaining;
  const max = protocolMinor !== undefined && protocolMinor < 2 ? 4 : MAX_CANCEL_KEY_BYTES;
  if (keyLength < 4 || keyLength > max) {
    throw malformed(`BackendKeyData: invalid key length ${keyLength}`);
  }
  const secretKey = Buffer.from(r.rest());
  return { name: 'BackendKeyData', bytes: msg, processId, secretKey };
}

export function encodeBackendKeyData(processId: number, secretKey: Uint8Array): Buffer {
  return new MessageWriter(4 + secretKey.length).int32(processId).bytes(secretKey).message('K');
}
