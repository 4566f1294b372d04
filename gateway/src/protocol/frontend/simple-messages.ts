/**
 * Frontend messages with an empty or opaque body: Sync, Flush, Terminate, CopyDone (empty);
 * CopyData and PasswordMessage (opaque bytes, never decoded or logged); CopyFail (a string).
 */
import { BodyReader } from '../reader';
import { MessageWriter } from '../writer';

export function readEmpty(frame: Buffer, what: string, bodyOffset = 5): void {
  new BodyReader(frame, bodyOffset).done(what);
}

export interface CopyFail {
  readonly name: 'CopyFail';
  readonly message: string;
}

export function readCopyFail(frame: Buffer, bodyOffset = 5): CopyFail {
  const r = new BodyReader(frame, bodyOffset);
  const message = r.cstring();
  r.done('CopyFail');
  return { name: 'CopyFail', message };
}

export const encodeSync = (): Buffer => new MessageWriter(0).message('S');
export const encodeFlush = (): Buffer => new MessageWriter(0).message('H');
export const encodeTerminate = (): Buffer => new MessageWriter(0).message('X');
export const encodeCopyDone = (): Buffer => new MessageWriter(0).message('c');
export const encodeCopyData = (data: Uint8Array): Buffer =>
  new MessageWriter(data.length).bytes(data).message('d');
export const encodeCopyFail = (message: string): Buffer => new MessageWriter().cstring(message).message('f');
export const encodePasswordMessage = (body: Uint8Array): Buffer =>
  new MessageWriter(body.length).bytes(body).message('p');
