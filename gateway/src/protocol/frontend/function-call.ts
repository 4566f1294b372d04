/**
 * FunctionCall ('F'): the fast-path interface, a function called by OID.
 * https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-FUNCTIONCALL
 * Read as HandleFunctionRequest / parse_fcall_arguments (src/backend/tcop/fastpath.c): OID,
 * unsigned Int16 counts, argument formats 0, 1 or one per argument (checked where used), an
 * argument size of -1 (NULL) or 0..remaining, the result format code, then pq_getmsgend. The
 * server refuses a result format other than 0 or 1 only after running the function
 * (SendFunctionResult); pgward refuses it before.
 */
import { malformed } from '../errors';
import { BodyReader } from '../reader';
import { MessageWriter } from '../writer';
import { readInt16s, readParameterValues, type BindParam } from './bind';

export interface FunctionCall {
  readonly name: 'FunctionCall';
  /** The original frame, header included (a view, not a copy). */
  readonly bytes: Buffer;
  readonly oid: number;
  readonly args: readonly BindParam[];
  readonly resultFormat: number;
}

export function readFunctionCall(frame: Buffer, bodyOffset = 5): FunctionCall {
  const r = new BodyReader(frame, bodyOffset);
  const oid = r.uint32();
  const formats = readInt16s(r, r.uint16(), 'FunctionCall');
  const na = r.uint16();
  if (formats.length > 1 && formats.length !== na)
    throw malformed(`FunctionCall: ${formats.length} formats for ${na} arguments`);
  const args = readParameterValues(r, na, formats, 'FunctionCall');
  const resultFormat = r.int16();
  if (resultFormat !== 0 && resultFormat !== 1)
    throw malformed(`FunctionCall: invalid result format ${resultFormat}`);
  r.done('FunctionCall');
  return { name: 'FunctionCall', bytes: frame, oid, args, resultFormat };
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
