/** CopyInResponse ('G'), CopyOutResponse ('H'), CopyBothResponse ('W'). */
import { malformed } from '../errors';
import { BodyReader } from '../reader';
import { MessageWriter } from '../writer';

export interface CopyResponse {
  readonly overallFormat: 0 | 1;
  readonly columnFormats: readonly number[];
}

export function readCopyResponse(msg: Buffer): CopyResponse {
  const r = new BodyReader(msg, 5);
  const overall = r.int8();
  if (overall !== 0 && overall !== 1) throw malformed('CopyResponse: bad format');
  const n = r.int16();
  if (n < 0) throw malformed('CopyResponse: bad column count');
  const columnFormats: number[] = [];
  for (let i = 0; i < n; i++) columnFormats.push(r.int16());
  r.done('CopyResponse');
  return { overallFormat: overall, columnFormats };
}

export function encodeCopyInResponse(columns: number, format: 0 | 1 = 0): Buffer {
  const w = new MessageWriter().int8(format).int16(columns);
  for (let i = 0; i < columns; i++) w.int16(format);
  return w.message('G');
}
