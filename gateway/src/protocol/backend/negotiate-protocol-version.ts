/**
 * NegotiateProtocolVersion ('v'): the newest protocol version the server supports for the requested
 * major, and the protocol options (`_pq_.*`) it did not recognize. The documentation calls the first
 * field the "newest minor protocol version", but PostgreSQL sends the whole version number
 * (`PG_PROTOCOL_LATEST`, e.g. 0x00030000 from PostgreSQL 15) and libpq reads it that way, refusing
 * anything below 3.0. https://www.postgresql.org/docs/current/protocol-message-formats.html
 */
import { malformed } from '../errors';
import { BodyReader } from '../reader';
import { MessageWriter } from '../writer';

export interface NegotiateProtocolVersion {
  readonly name: 'NegotiateProtocolVersion';
  /** The original message (a view). */
  readonly bytes: Buffer;
  /** The whole version as sent: (3 << 16) | minor. */
  readonly protocolVersion: number;
  /** Its minor part. */
  readonly newestMinor: number;
  readonly unsupportedOptions: readonly string[];
}

export function readNegotiateProtocolVersion(msg: Buffer): NegotiateProtocolVersion {
  const r = new BodyReader(msg, 5);
  const protocolVersion = r.int32();
  if (protocolVersion >>> 16 !== 3) {
    throw malformed(
      `NegotiateProtocolVersion: version ${protocolVersion >>> 16}.${protocolVersion & 0xffff}`,
    );
  }
  const newestMinor = protocolVersion & 0xffff;
  const n = r.int32();
  if (n < 0 || n > 10_000) throw malformed('NegotiateProtocolVersion: bad option count');
  r.expect(n, 1, 'NegotiateProtocolVersion');
  const unsupportedOptions: string[] = [];
  for (let i = 0; i < n; i++) unsupportedOptions.push(r.cstring());
  r.done('NegotiateProtocolVersion');
  return { name: 'NegotiateProtocolVersion', bytes: msg, protocolVersion, newestMinor, unsupportedOptions };
}

/** Sends the whole version number (3 << 16 | newestMinor), as PostgreSQL does. */
export function encodeNegotiateProtocolVersion(
  newestMinor: number,
  unsupportedOptions: readonly string[],
): Buffer {
  const w = new MessageWriter().int32((3 << 16) | (newestMinor & 0xffff)).int32(unsupportedOptions.length);
  for (const o of unsupportedOptions) w.cstring(o);
  return w.message('v');
}
