/**
 * Execute ('E'), Describe ('D') and Close ('C'): messages that name a portal or statement.
 * postgres.c reads Execute as a name and a signed Int32 row limit (0 or negative: no limit),
 * Describe and Close as a Byte1 ('S' or 'P', anything else "invalid ... message subtype") and a
 * name, each followed by pq_getmsgend.
 */
import { malformed } from '../errors';
import { BodyReader } from '../reader';
import { MessageWriter } from '../writer';

export interface Execute {
  readonly name: 'Execute';
  /** The original frame, header included (a view, not a copy). */
  readonly bytes: Buffer;
  readonly portal: string;
  readonly maxRows: number;
}

export interface Describe {
  readonly name: 'Describe';
  /** The original frame, header included (a view, not a copy). */
  readonly bytes: Buffer;
  readonly target: 'S' | 'P';
  readonly objectName: string;
}

export interface Close {
  readonly name: 'Close';
  /** The original frame, header included (a view, not a copy). */
  readonly bytes: Buffer;
  readonly target: 'S' | 'P';
  readonly objectName: string;
}

export function readExecute(frame: Buffer, bodyOffset = 5): Execute {
  const r = new BodyReader(frame, bodyOffset);
  const portal = r.cstring();
  const maxRows = r.int32();
  r.done('Execute');
  return { name: 'Execute', bytes: frame, portal, maxRows };
}

function target(v: number, what: string): 'S' | 'P' {
  if (v === 0x53) return 'S';
  if (v === 0x50) return 'P';
  throw malformed(`${what}: invalid target ${v}`);
}

export function readDescribe(frame: Buffer, bodyOffset = 5): Describe {
  const r = new BodyReader(frame, bodyOffset);
  const t = target(r.int8(), 'Describe');
  const objectName = r.cstring();
  r.done('Describe');
  return { name: 'Describe', bytes: frame, target: t, objectName };
}

export function readClose(frame: Buffer, bodyOffset = 5): Close {
  const r = new BodyReader(frame, bodyOffset);
  const t = target(r.int8(), 'Close');
  const objectName = r.cstring();
  r.done('Close');
  return { name: 'Close', bytes: frame, target: t, objectName };
}

export function encodeExecute(portal: string, maxRows = 0): Buffer {
  return new MessageWriter().cstring(portal).int32(maxRows).message('E');
}

export function encodeDescribe(targetKind: 'S' | 'P', objectName: string): Buffer {
  return new MessageWriter().int8(targetKind.charCodeAt(0)).cstring(objectName).message('D');
}

export function encodeClose(targetKind: 'S' | 'P', objectName: string): Buffer {
  return new MessageWriter().int8(targetKind.charCodeAt(0)).cstring(objectName).message('C');
}
