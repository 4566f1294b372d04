/** FunctionCall ('F'): the fast-path interface, a function called by OID. */
import { malformed } from '../errors';
import { BodyReader } from '../reader';
import { MessageWriter } from '../writer';
import type { BindParam } from './bind';

export interface FunctionCall {
  readonly name: 'FunctionCall';
  readonly oid: number;
  readonly args: readonly BindParam[];
  readonly resultFormat: number;
}

export function readFunctionCall(frame: Buffer, bodyOffset = 5): FunctionCall {
  const r = new BodyReader(frame, bodyOffset);
  const oid = r.uint32();
  const nf = r.int16();
  if (nf < 0) throw malformed('FunctionCall: negative format count');
  const formats: number[] = new Array(nf);
  for (let i = 0; i < nf; i++) {
    const f = r.int16();
    if (f !== 0 && f !== 1) throw malformed(`FunctionCall: invalid format code ${f}`);
    formats[i] = f;
  }
  const na = r.int16();
  if (na < 0) throw malformed('FunctionCall: negative argument count');
  if (nf > 1 && nf !== na) throw malformed(`FunctionCall: ${nf} formats for ${na} arguments`);
  const args: BindParam[] = new Array(na);
  for (let i = 0; i < na; i++) {
    const len = r.int32();
    let value: Buffer | null;
    if (len === -1) value = null;
    else if (len < 0) throw malformed(`FunctionCall: invalid argument length ${len}`);
    else value = r.bytes(len);
    const f = (nf === 0 ? 0 : nf === 1 ? formats[0] : formats[i]) as 0 | 1;
    args[i] = { format: f, value };
  }
  const resultFormat = r.int16();
  if (resultFormat !== 0 && resultFormat !== 1)
    throw malformed(`FunctionCall: invalid result format ${resultFormat}`);
  r.done('FunctionCall');
  return { name: 'FunctionCall', oid, args, resultFormat };
}

export function encodeFunctionCall(
  oid: number,
  args: ReadonlyArray<{ format: 0 | 1; value: Buffer | null }>,
  resultFormat = 0,
): Buffer {
  const w = new MessageWriter().uint32(oid).int16(args.length);
  for (const a of args) w.int16(a.format);
  w.int16(args.length);
  for (const a of args) {
    if (a.value === null) w.int32(-1);
    else w.int32(a.value.length).bytes(a.value);
  }
  w.int16(resultFormat);
  return w.message('F');
}
