/**
 * Frontend messages with an empty or opaque body: Sync, Flush, Terminate, CopyDone (empty);
 * CopyData, PasswordMessage, SASLResponse, GSSResponse (opaque bytes, never decoded or logged);
 * CopyFail (a string). https://www.postgresql.org/docs/current/protocol-message-formats.html
 *
 * What PostgreSQL checks (postgres.c PostgresMain, copyfromparse.c CopyGetData, auth.c):
 * Sync and Flush end with pq_getmsgend; Terminate ends the session whatever its body;
 * CopyDone's body is never read; CopyFail is read with pq_getmsgstring only (bytes after the
 * string are ignored); a PasswordMessage must be exactly one String (recv_password_packet:
 * "invalid password packet size"); SASLResponse and GSSResponse are the whole body.
 */
import { malformed } from '../errors';
import { BodyReader } from '../reader';
import { MessageWriter } from '../writer';

/** Legacy check: the body is empty. Prefer readFrontendMessage, which does what PostgreSQL does. */
export function readEmpty(frame: Buffer, what: string, bodyOffset = 5): void {
  new BodyReader(frame, bodyOffset).done(what);
}

export interface Sync {
  readonly name: 'Sync';
  readonly bytes: Buffer;
}
export interface Flush {
  readonly name: 'Flush';
  readonly bytes: Buffer;
}
export interface Terminate {
  readonly name: 'Terminate';
  readonly bytes: Buffer;
}
export interface CopyDone {
  readonly name: 'CopyDone';
  readonly bytes: Buffer;
}
export interface CopyData {
  readonly name: 'CopyData';
  readonly bytes: Buffer;
  /** The body (a view). */
  readonly data: Buffer;
}
export interface CopyFail {
  readonly name: 'CopyFail';
  readonly bytes: Buffer;
  readonly message: string;
}
/** A cleartext or MD5 password: a String. `data` is the body (a view), never decoded. */
export interface PasswordMessage {
  readonly name: 'PasswordMessage';
  readonly bytes: Buffer;
  readonly data: Buffer;
}
export interface SASLResponse {
  readonly name: 'SASLResponse';
  readonly bytes: Buffer;
  readonly data: Buffer;
}
export interface GSSResponse {
  readonly name: 'GSSResponse';
  readonly bytes: Buffer;
  readonly data: Buffer;
}

export function readSync(frame: Buffer): Sync {
  new BodyReader(frame, 5).done('Sync');
  return { name: 'Sync', bytes: frame };
}

export function readFlush(frame: Buffer): Flush {
  new BodyReader(frame, 5).done('Flush');
  return { name: 'Flush', bytes: frame };
}

/** PostgreSQL exits on Terminate without reading its body. */
export function readTerminate(frame: Buffer): Terminate {
  return { name: 'Terminate', bytes: frame };
}

/** CopyGetData ends the COPY on CopyDone without reading its body; outside COPY it is ignored. */
export function readCopyDone(frame: Buffer): CopyDone {
  return { name: 'CopyDone', bytes: frame };
}

export function readCopyData(frame: Buffer): CopyData {
  return { name: 'CopyData', bytes: frame, data: frame.subarray(5) };
}

/** CopyGetData reads the String with pq_getmsgstring and nothing after it. */
export function readCopyFail(frame: Buffer, bodyOffset = 5): CopyFail {
  const message = new BodyReader(frame, bodyOffset).cstring();
  return { name: 'CopyFail', bytes: frame, message };
}

/** recv_password_packet: the body is one String, its NUL the last byte. */
export function readPasswordMessage(frame: Buffer): PasswordMessage {
  const nul = frame.indexOf(0, 5);
  if (nul !== frame.length - 1) throw malformed('PasswordMessage: invalid password packet size');
  return { name: 'PasswordMessage', bytes: frame, data: frame.subarray(5) };
}

export function readSASLResponse(frame: Buffer): SASLResponse {
  return { name: 'SASLResponse', bytes: frame, data: frame.subarray(5) };
}

export function readGSSResponse(frame: Buffer): GSSResponse {
  return { name: 'GSSResponse', bytes: frame, data: frame.subarray(5) };
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
