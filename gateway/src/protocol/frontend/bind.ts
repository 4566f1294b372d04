/**
 * Bind ('B'): a portal from a prepared statement and parameter values.
 * https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-BIND
 *
 * Read as exec_bind_message (src/backend/tcop/postgres.c) reads it: every count is an unsigned
 * Int16 (pq_getmsgint(msg, 2): up to 65,535 parameters), format codes are signed Int16; the
 * parameter formats are 0 (all text), 1 (one for all) or exactly one per parameter; a format code
 * is checked only where a parameter uses it (0 text, 1 binary, else "unsupported format code"), so
 * a lone format code with no parameters is not checked; result format codes are checked by the
 * server against the result columns later (Describe/Execute), so they are kept as read; a value
 * length is -1 (NULL) or 0..remaining; the body ends exactly after the last result format
 * (pq_getmsgend).
 */
import { malformed } from '../errors';
import { BodyReader } from '../reader';
import { MessageWriter } from '../writer';

export interface BindParam {
  /** 0 text, 1 binary */
  readonly format: 0 | 1;
  /** null for SQL NULL (length -1) */
  readonly value: Buffer | null;
}

export interface Bind {
  readonly name: 'Bind';
  /** The original frame, header included (a view, not a copy). */
  readonly bytes: Buffer;
  readonly portal: string;
  readonly statement: string;
  readonly params: readonly BindParam[];
  readonly resultFormats: readonly number[];
}

/** A parameter format code as exec_bind_message and parse_fcall_arguments accept it. */
export function parameterFormat(v: number, what: string): 0 | 1 {
  if (v !== 0 && v !== 1) throw malformed(`${what}: unsupported format code ${v}`);
  return v;
}

/**
 * Reads `count` parameter values (Int32 length, -1 for NULL, then the bytes) with their formats
 * chosen as PostgreSQL chooses them: none → text, one → for all, else one each.
 */
export function readParameterValues(
  r: BodyReader,
  count: number,
  formats: readonly number[],
  what: string,
): BindParam[] {
  r.expect(count, 4, what);
  const nf = formats.length;
  const params: BindParam[] = new Array(count);
  let shared: 0 | 1 = 0;
  if (nf === 1 && count > 0) shared = parameterFormat(formats[0] as number, what);
  for (let i = 0; i < count; i++) {
    const len = r.int32();
    let value: Buffer | null;
    if (len === -1) value = null;
    else if (len < 0) throw malformed(`${what}: invalid parameter length ${len}`);
    else value = r.bytes(len);
    const format = nf > 1 ? parameterFormat(formats[i] as number, what) : shared;
    params[i] = { format, value };
  }
  return params;
}

/** `count` signed Int16 values (format codes). */
export function readInt16s(r: BodyReader, count: number, what: string): number[] {
  r.expect(count, 2, what);
  const out: number[] = new Array(count);
  for (let i = 0; i < count; i++) out[i] = r.int16();
  return out;
}

/** `ab`/`at`: where `frame` lies, when known (FrontendFrame; views of it are then cheaper). */
export function readBind(frame: Buffer, bodyOffset = 5, ab: ArrayBufferLike | null = null, at = 0): Bind {
  const r = new BodyReader(frame, bodyOffset, frame.length, ab, at);
  const portal = r.cstring();
  const statement = r.cstring();
  const formats = readInt16s(r, r.uint16(), 'Bind');
  const np = r.uint16();
  // One format for all, one per parameter, or none (all text).
  if (formats.length > 1 && formats.length !== np)
    throw malformed(`Bind: ${formats.length} parameter formats for ${np} parameters`);
  const params = readParameterValues(r, np, formats, 'Bind');
  const resultFormats = readInt16s(r, r.uint16(), 'Bind');
  r.done('Bind');
  return { name: 'Bind', bytes: frame, portal, statement, params, resultFormats };
}

export function encodeBind(
  portal: string,
  statement: string,
  params: ReadonlyArray<{ format: 0 | 1; value: Buffer | null }>,
  resultFormats: readonly number[] = [],
): Buffer {
  const w = new MessageWriter().cstring(portal).cstring(statement).int16(params.length);
  for (const p of params) w.int16(p.format);
  w.int16(params.length);
  for (const p of params) {
    if (p.value === null) w.int32(-1);
    else w.int32(p.value.length).bytes(p.value);
  }
  w.int16(resultFormats.length);
  for (const f of resultFormats) w.int16(f);
  return w.message('B');
}
