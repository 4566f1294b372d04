/** Bind ('B'): a portal from a prepared statement and parameter values. */
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
  readonly portal: string;
  readonly statement: string;
  readonly params: readonly BindParam[];
  readonly resultFormats: readonly number[];
}

function format(v: number): 0 | 1 {
  if (v !== 0 && v !== 1) throw malformed(`Bind: invalid format code ${v}`);
  return v;
}

export function readBind(frame: Buffer, bodyOffset = 5): Bind {
  const r = new BodyReader(frame, bodyOffset);
  const portal = r.cstring();
  const statement = r.cstring();
  const nf = r.int16();
  if (nf < 0) throw malformed('Bind: negative format count');
  const formats: Array<0 | 1> = new Array(nf);
  for (let i = 0; i < nf; i++) formats[i] = format(r.int16());
  const np = r.int16();
  if (np < 0) throw malformed('Bind: negative parameter count');
  // One format for all, one per parameter, or none (all text): protocol-message-formats "Bind".
  if (nf > 1 && nf !== np) throw malformed(`Bind: ${nf} parameter formats for ${np} parameters`);
  const params: BindParam[] = new Array(np);
  for (let i = 0; i < np; i++) {
    const len = r.int32();
    let value: Buffer | null;
    if (len === -1) value = null;
    else if (len < 0) throw malformed(`Bind: invalid parameter length ${len}`);
    else value = r.bytes(len);
    const f = nf === 0 ? 0 : nf === 1 ? (formats[0] as 0 | 1) : (formats[i] as 0 | 1);
    params[i] = { format: f, value };
  }
  const nr = r.int16();
  if (nr < 0) throw malformed('Bind: negative result format count');
  const resultFormats: number[] = new Array(nr);
  for (let i = 0; i < nr; i++) resultFormats[i] = format(r.int16());
  r.done('Bind');
  return { name: 'Bind', portal, statement, params, resultFormats };
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
