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

export function readBackendKeyData(msg: Buffer): BackendKeyData {
  const r = new BodyReader(msg, 5);
  const processId = r.int32();
  const secretKey = Buffer.from(r.rest());
  if (secretKey.length < 4 || secretKey.length > MAX_CANCEL_KEY_BYTES) {
    throw malformed(`BackendKeyData: invalid key length ${secretKey.length}`);
  }
  return { name: 'BackendKeyData', bytes: msg, processId, secretKey };
}

export function encodeBackendKeyData(processId: number, secretKey: Uint8Array): Buffer {
  return new MessageWriter(4 + secretKey.length).int32(processId).bytes(secretKey).message('K');
}
