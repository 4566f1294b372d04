/**
 * NegotiateProtocolVersion ('v'): the newest minor version the server supports for the requested
 * major, and the protocol options (`_pq_.*`) it did not recognize.
 */
import { malformed } from '../errors';
import { BodyReader } from '../reader';
import { MessageWriter } from '../writer';

export interface NegotiateProtocolVersion {
  readonly name: 'NegotiateProtocolVersion';
  readonly newestMinor: number;
  readonly unsupportedOptions: readonly string[];
}

export function readNegotiateProtocolVersion(msg: Buffer): NegotiateProtocolVersion {
  const r = new BodyReader(msg, 5);
  const newestMinor = r.int32();
  const n = r.int32();
  if (n < 0 || n > 10_000) throw malformed('NegotiateProtocolVersion: bad option count');
  const unsupportedOptions: string[] = [];
  for (let i = 0; i < n; i++) unsupportedOptions.push(r.cstring());
  r.done('NegotiateProtocolVersion');
  return { name: 'NegotiateProtocolVersion', newestMinor, unsupportedOptions };
}

export function encodeNegotiateProtocolVersion(newestMinor: number, unsupportedOptions: readonly string[]): Buffer {
  const w = new MessageWriter().int32(newestMinor).int32(unsupportedOptions.length);
  for (const o of unsupportedOptions) w.cstring(o);
  return w.message('v');
}
