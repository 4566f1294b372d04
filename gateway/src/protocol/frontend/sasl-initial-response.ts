/**
 * SASLInitialResponse ('p' while a SASL exchange starts): mechanism name, then the client-first
 * message. For SCRAM the message starts with the GS2 header: 'n' (no channel binding), 'y' (client
 * supports it but believes the server does not), or 'p=<type>' (binding in use). RFC 5802 §7.
 */
import { malformed } from '../errors';
import { BodyReader } from '../reader';
import { MessageWriter } from '../writer';

export interface SASLInitialResponse {
  readonly name: 'SASLInitialResponse';
  /** The original frame, header included (a view, not a copy). */
  readonly bytes: Buffer;
  readonly mechanism: string;
  readonly data: Buffer | null;
}

export function readSASLInitialResponse(frame: Buffer, bodyOffset = 5): SASLInitialResponse {
  const r = new BodyReader(frame, bodyOffset);
  const mechanism = r.cstring();
  const len = r.int32();
  let data: Buffer | null = null;
  if (len === -1) data = null;
  else if (len < 0) throw malformed('SASLInitialResponse: invalid length');
  else data = r.bytes(len);
  r.done('SASLInitialResponse');
  return { name: 'SASLInitialResponse', bytes: frame, mechanism, data };
}

/** The channel-binding flag of a SCRAM client-first message: 'n', 'y', 'p', or null if unreadable. */
export function scramChannelBindingFlag(data: Buffer | null): 'n' | 'y' | 'p' | null {
  if (!data || data.length === 0) return null;
  const c = String.fromCharCode(data[0] as number);
  return c === 'n' || c === 'y' || c === 'p' ? c : null;
}

export function encodeSASLInitialResponse(mechanism: string, data: Uint8Array | null): Buffer {
  const w = new MessageWriter().cstring(mechanism);
  if (data === null) w.int32(-1);
  else w.int32(data.length).bytes(data);
  return w.message('p');
}
