/**
 * ParameterDescription ('t'): an unsigned Int16 count (a statement may have 65,535 parameters), then
 * one type OID each. https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-PARAMETERDESCRIPTION
 */
import { BodyReader } from '../reader';
import { MessageWriter } from '../writer';

export interface ParameterDescription {
  readonly name: 'ParameterDescription';
  /** The original message (a view). */
  readonly bytes: Buffer;
  readonly typeOids: readonly number[];
}

export function readParameterDescription(msg: Buffer): ParameterDescription {
  const r = new BodyReader(msg, 5);
  const n = r.uint16();
  r.expect(n, 4, 'ParameterDescription');
  const typeOids: number[] = new Array(n);
  for (let i = 0; i < n; i++) typeOids[i] = r.uint32();
  r.done('ParameterDescription');
  return { name: 'ParameterDescription', bytes: msg, typeOids };
}

export function encodeParameterDescription(typeOids: readonly number[]): Buffer {
  const w = new MessageWriter(2 + 4 * typeOids.length).int16(typeOids.length);
  for (const t of typeOids) w.uint32(t);
  return w.message('t');
}
