/** Parse ('P'): extended protocol statement preparation. */
import { malformed } from '../errors';
import { BodyReader } from '../reader';
import { MessageWriter } from '../writer';

export interface Parse {
  readonly name: 'Parse';
  readonly statement: string;
  readonly sql: string;
  readonly paramTypes: readonly number[];
}

export function readParse(frame: Buffer, bodyOffset = 5): Parse {
  const r = new BodyReader(frame, bodyOffset);
  const statement = r.cstring();
  const sql = r.cstring();
  const n = r.int16();
  if (n < 0) throw malformed('Parse: negative parameter count');
  const paramTypes: number[] = new Array(n);
  for (let i = 0; i < n; i++) paramTypes[i] = r.uint32();
  r.done('Parse');
  return { name: 'Parse', statement, sql, paramTypes };
}

export function encodeParse(statement: string, sql: string, paramTypes: readonly number[] = []): Buffer {
  const w = new MessageWriter(sql.length + statement.length + 16)
    .cstring(statement)
    .cstring(sql)
    .int16(paramTypes.length);
  for (const t of paramTypes) w.uint32(t);
  return w.message('P');
}
