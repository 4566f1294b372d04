/**
 * CopyInResponse ('G'), CopyOutResponse ('H'), CopyBothResponse ('W'): Int8 overall format (0 text,
 * 1 binary), an unsigned Int16 column count, one Int16 format code per column.
 */
import { malformed } from '../errors';
import { BodyReader } from '../reader';
import { MessageWriter } from '../writer';

export interface CopyResponse {
  readonly overallFormat: 0 | 1;
  readonly columnFormats: readonly number[];
}

export interface CopyInResponse extends CopyResponse {
  readonly name: 'CopyInResponse';
  readonly bytes: Buffer;
}
export interface CopyOutResponse extends CopyResponse {
  readonly name: 'CopyOutResponse';
  readonly bytes: Buffer;
}
export interface CopyBothResponse extends CopyResponse {
  readonly name: 'CopyBothResponse';
  readonly bytes: Buffer;
}

export function readCopyResponse(msg: Buffer): CopyResponse {
  const r = new BodyReader(msg, 5);
  const overall = r.int8();
  if (overall !== 0 && overall !== 1) throw malformed('CopyResponse: bad format');
  const n = r.uint16();
  r.expect(n, 2, 'CopyResponse');
  const columnFormats: number[] = new Array(n);
  for (let i = 0; i < n; i++) columnFormats[i] = r.int16();
  r.done('CopyResponse');
  return { overallFormat: overall, columnFormats };
}

export function readCopyInResponse(msg: Buffer): CopyInResponse {
  return { name: 'CopyInResponse', bytes: msg, ...readCopyResponse(msg) };
}
export function readCopyOutResponse(msg: Buffer): CopyOutResponse {
  return { name: 'CopyOutResponse', bytes: msg, ...readCopyResponse(msg) };
}
export function readCopyBothResponse(msg: Buffer): CopyBothResponse {
  return { name: 'CopyBothResponse', bytes: msg, ...readCopyResponse(msg) };
}

function encodeCopyResponse(type: 'G' | 'H' | 'W', columns: number, format: 0 | 1): Buffer {
  const w = new MessageWriter().int8(format).int16(columns);
  for (let i = 0; i < columns; i++) w.int16(format);
  return w.message(type);
}

export function encodeCopyInResponse(columns: number, format: 0 | 1 = 0): Buffer {
  return encodeCopyResponse('G', columns, format);
}
export function encodeCopyOutResponse(columns: number, format: 0 | 1 = 0): Buffer {
  return encodeCopyResponse('H', columns, format);
}
export function encodeCopyBothResponse(columns: number, format: 0 | 1 = 0): Buffer {
  return encodeCopyResponse('W', columns, format);
}
